"""The reliability and security suite (issue 9): crash, fault, bad-input, concurrency and
secrets scenarios through the real `cfy` against simulated managers."""
