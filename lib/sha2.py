"""SHA-2 by name, streaming: hashlib's where the port has it, SHA-384 / SHA-512 in Python where not.

    h = sha2.new("sha384")       # "sha256", "sha384" or "sha512"; ValueError for another name
    h.update(chunk); ...         # as often as needed: a firmware image can be hashed as it arrives
    h.digest()                   # 32, 48 or 64 bytes
    sha2.SIZE["sha384"]          # 48

MicroPython's hashlib has sha256 (and sha1), but on the unix and ESP32 ports not sha384 or sha512:
then new() gives sha512.SHA512, imported only for that.
"""
import hashlib

SIZE = {"sha256": 32, "sha384": 48, "sha512": 64}
BLOCK = {"sha256": 64, "sha384": 128, "sha512": 128}


def new(name, data=None):
    """A hash object of SHA-2 variant NAME (hashlib's if the port has it), fed DATA if given."""
    if name not in SIZE:
        raise ValueError("unsupported hash " + str(name))
    f = getattr(hashlib, name, None)
    if f is None:
        from sha512 import SHA512
        h = SHA512(name)
    else:
        h = f()
    if data:
        h.update(data)
    return h
