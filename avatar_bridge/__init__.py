"""avatar-bridge: read a real face, down to its micro-expressions, and drive an avatar with it.

The pipeline runs one way: capture -> tracking -> facs -> micro -> retarget -> outputs.
Each stage takes an options dataclass, has an online ``update`` method and passes a small
record (see :mod:`avatar_bridge.records`) to the next.
"""

__version__ = "0.1.0"
