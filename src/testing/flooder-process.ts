/**
 * A flooder (flooders.ts) as a process of its own: `node flooder-process.js '<FloodPlan json>'`
 * prints `CHILD <FloodOutcome json>` when its flood is over.
 */
import { reportToParent } from './child-process.ts'
import { runFlood, type FloodPlan } from './flooders.ts'

// The flooders bound their waits with AbortSignal.timeout, whose timers do not keep a
// process alive: when the daemon hangs up and a wait's only other handle goes with it,
// Node would exit (13, an unsettled await) before the timeout fires. This timer keeps the
// process up until the flood reports.
const keepAlive = setInterval(() => {}, 1_000)
const outcome = await runFlood(JSON.parse(process.argv[2]!) as FloodPlan)
clearInterval(keepAlive)
reportToParent(outcome)
