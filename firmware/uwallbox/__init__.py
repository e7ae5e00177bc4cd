"""uwallbox: OCPP 1.6J charge-point firmware."""
VERSION = "0.1.0"


def serial_number():
    """The chargePointSerialNumber BootNotification reports: the chip's unique id in hex."""
    import binascii
    import machine
    return binascii.hexlify(machine.unique_id()).decode()[:25]
