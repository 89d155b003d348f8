"""`hearth chat`: a chat in the terminal against a running Hearth, or against the engine
started in this process when none answers. Sits between the CLI and the app: it starts
the app only for that embedded case, and otherwise speaks HTTP like any other client."""
