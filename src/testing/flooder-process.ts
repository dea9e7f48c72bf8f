/**
 * A flooder (flooders.ts) as a process of its own: `node flooder-process.js '<FloodPlan json>'`
 * prints `CHILD <FloodOutcome json>` when its flood is over.
 */
import { runFlood, type FloodPlan } from './flooders.ts'

const outcome = await runFlood(JSON.parse(process.argv[2]!) as FloodPlan)
console.log(`CHILD ${JSON.stringify(outcome)}`)
process.exit(0)
