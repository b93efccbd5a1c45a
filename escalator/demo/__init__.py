"""`escalator demo`: the whole pipeline on the embedded broker with realistic sample traffic."""
