# Frozen modules of uwallbox (micropython-lib manifest convention): the `uwallbox` package from
# firmware/ and the general-purpose modules of lib/. Paths are relative to this file.
#
# The unix build (`make mp32`, FROZEN_MANIFEST=<absolute path of this file>) also needs the
# standard variant's own manifest (asyncio, ssl, mip, requests, argparse). A port's board manifest
# includes this file with unix=False instead, after its own port manifest: see
# boards/esp32-devkitc/manifest.py.
options.defaults(unix=True)
if options.unix:
    include("$(PORT_DIR)/variants/standard/manifest.py")

package("uwallbox", base_path="firmware")
for name in ("chain.py", "csr.py", "ec.py", "ftp.py", "http.py", "httpd.py", "modbus.py", "pem.py",
             "rsa.py", "sha2.py", "sha512.py", "sig.py", "tcp.py", "ws.py",
             "wsopen.py", "x509.py"):
    module(name, base_path="lib")
