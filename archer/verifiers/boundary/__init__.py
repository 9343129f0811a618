"""Both sides of the sandbox boundary: `plain` (the plain-data codec, used by the trusted
scorer and inside the sandbox) and `harness` (the first code that runs inside it). Files
here import only the standard library and each other: this folder is what a sandboxed
interpreter can see of the project."""
