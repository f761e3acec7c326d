// Makes the built executables runnable: the bridge bin and the simulator's `lms` shim.
import { chmodSync, existsSync } from "node:fs"

for (const file of ["dist/src/bin.js", "dist/src/simulator/lms.js"]) {
  if (existsSync(file)) chmodSync(file, 0o755)
}
