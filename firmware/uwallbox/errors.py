"""OCPP-J CALLERROR codes, the exception handlers raise to answer with one, and Offline."""
NOT_IMPLEMENTED = "NotImplemented"
NOT_SUPPORTED = "NotSupported"
INTERNAL = "InternalError"
PROTOCOL = "ProtocolError"
SECURITY = "SecurityError"
FORMATION = "FormationViolation"
PROPERTY = "PropertyConstraintViolation"
OCCURENCE = "OccurenceConstraintViolation"
TYPE = "TypeConstraintViolation"
GENERIC = "GenericError"


class CallError(Exception):
    """Raised by a handler (or received from the CSMS): code, description, details."""

    def __init__(self, code, description="", details=None):
        super().__init__(code, description)
        self.code = code
        self.description = description
        self.details = details or {}


class Offline(Exception):
    """No connection (or no accepted registration) to send a CALL on."""
