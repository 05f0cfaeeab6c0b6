"""Travel documents and manifests: ICAO 9303 MRZ, eMRTD data groups, PAXLST, CSV, JSON."""
