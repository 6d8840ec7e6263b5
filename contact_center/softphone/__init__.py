"""The softphone: where an agent's calls ring (browser, phone, SIP) and Voice SDK tokens."""
