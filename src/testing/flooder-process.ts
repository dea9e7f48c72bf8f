/**
 * A flooder (flooders.ts) as a process of its own: `node flooder-process.js '<FloodPlan json>'`
 * prints `CHILD <FloodOutcome json>` when its flood is over.
 */
import { reportToParent } from './child-process.ts'
import { runFlood, type FloodPlan } from './flooders.ts'

reportToParent(await runFlood(JSON.parse(process.argv[2]!) as FloodPlan))
