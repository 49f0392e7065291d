"""The automation contract between a coordination runner and the supervisor, in one place.

- `printed`: the lines a run prints on stdout (`LOG_DIR:`, `STATUS:`, ... `ANSWER_FILE:`, `ERROR:`)
  and reading them back from a shell's log;
- `schema`: status.json as mgcoord writes it (its writer validates against these models);
- `summary`: reading status.json, mgcoord's or the real MassGen's, into a shell's `coordination`
  summary, with the run's `outcome` and stall detection;
- `runners`: which program runs a coordination run (`mgcoord`, `massgen`, or a command) and its
  command line;
- `files`: bounded, non-blocking reads of the files a job names.

mgcoord (`coordinator/`) writes what these modules read; both sides import the names from here.
"""
