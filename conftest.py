"""Pytest entry for the Python suites (testbed/tests, e2e/faults, e2e/deploy): the testbed
package's shared fixtures, registered once for all of them. pytest.ini beside this file
puts the repository root on sys.path, so `import testbed` works from any directory."""

pytest_plugins = ["testbed.pytest_plugin"]
