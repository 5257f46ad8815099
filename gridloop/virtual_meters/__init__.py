"""Virtual meters, gateways, communication links and DIAs that publish like the pilots' devices."""
