"""The load benchmark that `python3 benches/run.py` starts (wrk against our
server and the peers: the warm path and the cold path; DPoP requests on
request), by concern:

  cli          the command line (its docstring is --help) and main()
  common       paths, stacks and labels, BenchError, log and warn
  servers      commands, HTTP checks, started processes, the shared Context, our binary
  machine      facts about the machine, peak memory, RSA speed
  peers        the peers' setup, builds, commands and versions
  wrk          installing and running wrk, reading its scripts' output
  perf         the server's CPU time per request (`perf stat`)
  tokens       minting the cold path's tokens (and DPoP proofs) in worker processes
  mint_worker  the signer those processes run (`run.py --mint-worker`)
  warm         the warm path
  cold         the cold path
  dpop         DPoP requests, each proof used once (an A/B of binaries)
  report       the tables, the .md and .json results, the charts
  chart        the SVG bar chart (also `python3 benches/harness/chart.py`)

Standard library only; mint_worker alone also needs `cryptography`.

benches/ itself keeps what one runs, each a single file (validation.rs for
`cargo bench`, run.py, slow_clients.py), and what they read and write (wrk/,
results/); a program of more than one file lives in a package beside its
launcher, as this one does.
"""
