"""Local fake servers for dry runs and tests: real protocols on loopback, nothing leaves."""
