// node hack/realnet/build.ts: builds (or finds cached) the real-network binaries,
// so a test run shows build progress before its first test starts.
import { ensureRealnetBinaries } from "./binaries.ts";

const binaries = await ensureRealnetBinaries();
process.stderr.write(`[netservice] real-network binaries ready: ${Object.values(binaries).join(", ")}\n`);
