"""uwallbox: OCPP 1.6J charge-point firmware."""
VERSION = "0.1.0"


def unload(before, keep=()):
    """Drop the modules loaded since BEFORE (a list of sys.modules' names), but those in KEEP:
    code needed once (a CALL's profile, a connection's handshake, the key table) leaves no
    bytecode behind. The one way modules leave (ocpp/rpc.py after a CALL, and the parts that
    load a module for one job)."""
    import sys
    for k in [k for k in sys.modules if k not in before and k not in keep]:
        del sys.modules[k]
        pkg, _, name = k.rpartition(".")
        if pkg in sys.modules:
            try:
                delattr(sys.modules[pkg], name)
            except AttributeError:
                pass


def use(module, name):
    """NAME (a function) of MODULE (its full name), the module and what it imported dropped at
    once: the function keeps its code while it runs and none after (building the App, a
    connection attempt). Modules the function imports while it runs stay loaded."""
    with transient():
        return getattr(__import__(module, None, None, (name,)), name)


class transient:
    """`with transient():` the modules imported inside the block are dropped at its end (a
    CALL's rules, a report, a card's lookup): it leaves no code behind."""

    def __enter__(self):
        import sys
        self.before = list(sys.modules)

    def __exit__(self, *exc):
        unload(self.before)


# lib/'s signature and key modules: imported for a rare operation, dropped after it (forget_crypto)
_CRYPTO = ("chain", "csr", "ec", "rsa", "sig", "sha2", "sha512")


def forget_crypto():
    """Drop the signature and key modules (and the multiples of G ec.py keeps): about 20 KB of
    heap until the next certificate or firmware check imports them again."""
    import gc
    import sys
    for name in _CRYPTO:
        sys.modules.pop(name, None)
    gc.collect()


def serial_number():
    """The chargePointSerialNumber BootNotification reports: the chip's unique id in hex."""
    import binascii
    import machine
    return binascii.hexlify(machine.unique_id()).decode()[:25]
