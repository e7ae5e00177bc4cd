"""Open a TCP or TLS stream with MicroPython asyncio (shared by ws, http and ftp)."""
import asyncio


async def open(host, port, tls=False, ctx=None):
    """(reader, writer) to HOST:PORT. With TLS, CTX is an ssl.SSLContext used as given; None makes
    the port's default client context, which on MicroPython 1.29 does NOT verify the server;
    False makes one with CERT_NONE set explicitly. The host name goes out as SNI."""
    if not tls:
        ctx = None
    elif not ctx:
        import ssl

        insecure = ctx is False
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if insecure:
            ctx.verify_mode = ssl.CERT_NONE
    return await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host if tls else None)
