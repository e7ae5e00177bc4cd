"""uwallbox: OCPP 1.6J charge-point firmware."""
VERSION = "0.1.0"
