"""uwallbox: OCPP 1.6J charge-point firmware."""
VERSION = "0.1.0"


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
