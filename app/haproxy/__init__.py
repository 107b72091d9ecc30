"""HAProxy as kernlb's L7 engine: http/https farms rendered from the database (config.py),
run and changed hitlessly (engine.py)."""
