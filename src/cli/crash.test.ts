import assert from 'node:assert/strict'
import { test } from 'node:test'
import { crashAdds } from '../testing/crash-add.ts'
import { crashDownloads } from '../testing/crash-download.ts'
import { tempDir } from '../testing/temp.ts'

/** The 50 and more: npm run bench:crash. */
const QUICK_KILLS = 8

test(`shoal add killed with SIGKILL at ${QUICK_KILLS} seeded instants: the repository opens, every block verifies, every pin is complete, and the add then gives the right CID`, { timeout: 180_000 }, async (t) => {
  const report = await crashAdds(await tempDir(t), { kills: QUICK_KILLS, fileMib: 4, seed: process.env['SHOAL_SEED'] ?? 'quick' })
  assert.deepEqual(report.problems, [], `replay: SHOAL_SEED=${process.env['SHOAL_SEED'] ?? 'quick'}`)
  assert.equal(report.kills, QUICK_KILLS)
  assert.ok(report.killsAfterExit < QUICK_KILLS, `some kills landed mid-add: ${JSON.stringify(report.killAfterMs)} (an add takes ${report.addMs.toFixed(0)} ms)`)
  assert.ok(report.blocksChecked > 0, 'blocks were written before some kill')
  assert.ok(report.finalCidMatches, 'the add after the kills gives the CID of an add into a fresh repository')
})

const QUICK_DOWNLOAD_KILLS = 3

test(`a leecher daemon killed with SIGKILL ${QUICK_DOWNLOAD_KILLS} times mid-download of a file two levels deep: its repository checks out after each kill, and the fetch then resumes, receiving only what was missing`, { timeout: 180_000 }, async (t) => {
  // 48 MiB in unixfs-v0-2015's 256 KiB leaves, 174 to a node: 192 leaves under two inner nodes.
  const report = await crashDownloads(t, await tempDir(t), { kills: QUICK_DOWNLOAD_KILLS, fileMib: 48, cidProfile: 'unixfs-v0-2015', seed: process.env['SHOAL_SEED'] ?? 'quick' })
  assert.deepEqual(report.problems, [], `replay: SHOAL_SEED=${process.env['SHOAL_SEED'] ?? 'quick'}`)
  assert.equal(report.kills, QUICK_DOWNLOAD_KILLS)
  assert.equal(report.dagDepth, 2)
  assert.equal(report.dagBlocks, 1 + 2 + 192)
  // With one seeder the endgame asks nobody twice: every byte received was missing.
  assert.ok(report.finalReceivedBytes <= report.finalMissingBytes, `received ${report.finalReceivedBytes} bytes for ${report.finalMissingBytes} missing: ${JSON.stringify(report)}`)
})
