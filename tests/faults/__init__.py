"""Fault injection against real Mosquitto and PostgreSQL: nothing lost, nothing doubled."""
