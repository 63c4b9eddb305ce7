/**
 * A process that claims an embedded data directory (argv[2]) and holds it until killed, or for a minute
 * at most. Run with `node --import tsx` by test/store/data-dir-lock.test.ts.
 */
import { claimDataDir } from "../../src/store/embedded-db.ts";

claimDataDir(process.argv[2]!);
setTimeout(() => process.exit(0), 60_000);
