"""Controllers: take commands from the platform and apply them to the running grid."""
