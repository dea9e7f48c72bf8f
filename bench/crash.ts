/**
 * `npm run bench:crash [-- --kills N --download-kills D --file-mib M --download-file-mib M
 * --download-cid-profile P --seed S]` (defaults: 50 kills of `shoal add` of a 16 MiB file, and
 * 50 of a leecher daemon mid-download of a 64 MiB file added with unixfs-v0-2015, two levels
 * deep): the harnesses of src/testing/crash-add.ts and crash-download.ts, with what their
 * checks found. The last line is `RESULT {json}`.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parseCidProfile } from '../src/core/content/cid-profile.ts'
import { crashAdds } from '../src/testing/crash-add.ts'
import { crashDownloads } from '../src/testing/crash-download.ts'
import { cleanupScope } from '../src/testing/temp.ts'

const { values } = parseArgs({ options: {
  kills: { type: 'string', default: '50' },
  'download-kills': { type: 'string', default: '50' },
  'file-mib': { type: 'string', default: '16' },
  'download-file-mib': { type: 'string', default: '64' },
  'download-cid-profile': { type: 'string', default: 'unixfs-v0-2015' },
  seed: { type: 'string', default: '1' },
} })
const fileMib = Number(values['file-mib'])
const downloadFileMib = Number(values['download-file-mib'])
const downloadCidProfile = parseCidProfile(values['download-cid-profile'])
const spread = (instants: number[]): string => {
  const sorted = [...instants].sort((a, b) => a - b)
  return `${sorted[0]}–${sorted.at(-1)} ms (median ${sorted[sorted.length >> 1]})`
}
const directory = await mkdtemp(join(tmpdir(), 'shoal-crash-'))
const context = cleanupScope()
let problems = 0
const result = { addKills: 0, downloadKills: 0, refetchedBytes: 0, problems: 0 }
try {
  const add = await crashAdds(join(directory, 'add'), { kills: Number(values.kills), fileMib, seed: values.seed })
  console.log(`shoal add of ${fileMib} MiB (uninterrupted: ${add.addMs.toFixed(0)} ms), killed with SIGKILL ${add.kills} times, seed ${values.seed}`)
  console.log(`  kill instants ${spread(add.killAfterMs)} after start; ${add.killsAfterExit} found the add already done`)
  console.log(`  checks after each kill: ${add.blocksChecked} block reads verified, ${add.pinsChecked} pins read back whole; final add gives the fresh repository's CID: ${add.finalCidMatches}`)
  console.log(`  problems: ${add.problems.length === 0 ? 'none' : add.problems.join('; ')}`)
  problems += add.problems.length + (add.finalCidMatches ? 0 : 1)
  result.addKills = add.kills

  const download = await crashDownloads(context, join(directory, 'download'), { kills: Number(values['download-kills']), fileMib: downloadFileMib, cidProfile: downloadCidProfile, seed: values.seed })
  console.log(`a leecher daemon fetching ${downloadFileMib} MiB added with ${downloadCidProfile} (${download.dagBlocks} blocks, ${download.dagDepth} levels below the root; uninterrupted: ${download.fetchMs.toFixed(0)} ms) killed with SIGKILL ${download.kills} times`)
  console.log(`  kill instants ${spread(download.killAfterMs)} after the fetch started; ${download.completedBeforeKill} found the file whole; held after each kill (MiB): ${download.heldBytes.map((bytes) => (bytes / 2 ** 20).toFixed(0)).join(' ')}`)
  console.log(`  final fetch received ${download.finalReceivedBytes} bytes for ${download.finalMissingBytes} missing (${download.finalReceivedBytes - download.finalMissingBytes} fetched again)`)
  console.log(`  problems: ${download.problems.length === 0 ? 'none' : download.problems.join('; ')}`)
  problems += download.problems.length
  result.downloadKills = download.kills
  result.refetchedBytes = download.finalReceivedBytes - download.finalMissingBytes
} finally {
  await context.close()
  await rm(directory, { recursive: true, force: true })
}
console.log(`RESULT ${JSON.stringify({ ...result, problems })}`)
process.exitCode = problems === 0 ? 0 : 1
