# Board manifest for an ESP32 image with uwallbox frozen in (documentation: not used by the tests).
# Build MicroPython's ESP32_GENERIC-OTA board with it, e.g. from ports/esp32 of a checkout:
#   make BOARD=ESP32_GENERIC BOARD_VARIANT=OTA FROZEN_MANIFEST=/abs/path/boards/esp32-devkitc/manifest.py
# board.py is not frozen: `make deploy` copies it to the filesystem as /board.py.
include("$(PORT_DIR)/boards/manifest.py")   # the ESP32 port's own frozen modules (asyncio, ...)
include("../../manifest.py", unix=False)    # uwallbox + lib/, without the unix variant's manifest
