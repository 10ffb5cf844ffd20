"""Helpers shared by the test suites, imported as ``tests.support.<module>``.

::

    service       the real service in a subprocess: start_service, RunningService, identities
    faults        fault-test accounting: Ledger, outcomes, source-text clients
    flaky_proxy   a TCP proxy that drops, delays and cuts connections on purpose
    fake_client   an in-memory stand-in for Client, for Executor unit tests
    hostile       hostile and heavy clients (half-open floods, slow bodies, huge answers) and
                  the well-behaved second client that times its answers meanwhile
"""
