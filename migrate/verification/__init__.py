"""Verification: run models / written artifacts on the same inputs and compare their outputs."""
