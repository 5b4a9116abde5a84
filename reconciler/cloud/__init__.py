"""Everything reconciler reads from or changes in the cloud goes through `CloudClient` (client.py).

`NhnCloudClient` (nhn.py) implements it over HTTP for NHN Cloud and, unchanged, for the simulator.
"""
