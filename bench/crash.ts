/**
 * `npm run bench:crash [-- --kills N --file-mib M --seed S]` (default 50 kills of the add of a
 * 16 MiB file): src/testing/crash-add.ts, with what each check found.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { crashAdds } from '../src/testing/crash-add.ts'

const { values } = parseArgs({ options: {
  kills: { type: 'string', default: '50' },
  'file-mib': { type: 'string', default: '16' },
  seed: { type: 'string', default: '1' },
} })
const directory = await mkdtemp(join(tmpdir(), 'shoal-crash-'))
try {
  const report = await crashAdds(directory, { kills: Number(values.kills), fileMib: Number(values['file-mib']), seed: values.seed })
  const sorted = [...report.killAfterMs].sort((a, b) => a - b)
  console.log(`shoal add of ${values['file-mib']} MiB (uninterrupted: ${report.addMs.toFixed(0)} ms), killed with SIGKILL ${report.kills} times, seed ${values.seed}`)
  console.log(`kill instants: ${sorted[0]}–${sorted.at(-1)} ms after start (median ${sorted[sorted.length >> 1]}); ${report.killsAfterExit} found the add already done`)
  console.log(`checks after each kill: ${report.blocksChecked} block reads verified, ${report.pinsChecked} pins read back whole`)
  console.log(`final add gives the fresh repository's CID: ${report.finalCidMatches}`)
  console.log(report.problems.length === 0 ? 'problems: none' : `problems (${report.problems.length}):\n  ${report.problems.join('\n  ')}`)
  process.exitCode = report.problems.length === 0 && report.finalCidMatches ? 0 : 1
} finally {
  await rm(directory, { recursive: true, force: true })
}
