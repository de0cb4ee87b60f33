"""The IB domain: plans, the commission engine, the partner tree rules. Pure, no I/O."""
