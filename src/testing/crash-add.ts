/**
 * Crash safety of `shoal add`: the same file is added again and again to one repository, each
 * `shoal add` killed with SIGKILL at a seeded random instant of its run (process start to
 * exit, start-up included). After every kill the repository is opened in this process, as
 * the next command would open it, and checked: it opens (the dead process's lock taken
 * over), every block verifies against its CID, and every pin is complete (its whole DAG
 * read back, each block hashed). At the end an add runs to completion and must give the CID
 * of an add into a fresh repository.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Prng } from '../core/prng.ts'
import { initRepo } from '../node/repo.ts'
import { ShoalNode } from '../node/shoal-node.ts'
import { collect, runShoal, startShoal } from './cli.ts'
import { pseudoRandomBytes } from './temp.ts'

export interface AddCrashReport {
  kills: number
  /** When each kill landed, ms after the process started. */
  killAfterMs: number[]
  /** Kills that found the add already done (the process had exited). */
  killsAfterExit: number
  /** How long an uninterrupted `shoal add` of the file takes, start to exit. */
  addMs: number
  /** Per check: blocks in the store, and pins (complete ones) after the kill. */
  blocksChecked: number
  pinsChecked: number
  /** Everything found wrong: a repository that would not open, a corrupt block, an incomplete pin. */
  problems: string[]
  finalCidMatches: boolean
}

const MiB = 1024 * 1024

export async function crashAdds(directory: string, options: { kills: number; fileMib: number; seed: string }): Promise<AddCrashReport> {
  const prng = Prng.fromSeed(`crash-add/${options.seed}`)
  await mkdir(directory, { recursive: true })
  const source = join(directory, 'source.bin')
  await writeFile(source, pseudoRandomBytes(options.fileMib * MiB, 7))
  const reference = join(directory, 'reference')
  await initRepo(reference)
  const startedMs = performance.now()
  const added = await runShoal(['--repo', reference, 'add', '--quiet', source])
  const addMs = performance.now() - startedMs
  if (added.code !== 0) throw new Error(`reference add failed: ${added.stderr}`)
  const expectedCid = added.stdout.trim()

  const repo = join(directory, 'repo')
  await initRepo(repo)
  const report: AddCrashReport = { kills: 0, killAfterMs: [], killsAfterExit: 0, addMs, blocksChecked: 0, pinsChecked: 0, problems: [], finalCidMatches: false }
  for (let kill = 0; kill < options.kills; kill++) {
    const delayMs = prng.int(Math.ceil(addMs * 1.1))
    const child = startShoal(['--repo', repo, 'add', '--quiet', source])
    const exit = collect(child, 120_000)
    const exitedFirst = await Promise.race([exit.then(() => true), sleep(delayMs).then(() => false)])
    if (exitedFirst) report.killsAfterExit++
    else child.kill('SIGKILL')
    await exit
    report.kills++
    report.killAfterMs.push(delayMs)
    await check(repo, report, `kill ${kill} at ${delayMs} ms`)
  }
  const final = await runShoal(['--repo', repo, 'add', '--quiet', source])
  report.finalCidMatches = final.code === 0 && final.stdout.trim() === expectedCid
  await check(repo, report, 'after the final add')
  return report
}

async function check(repo: string, report: AddCrashReport, when: string): Promise<void> {
  const checked = await checkRepository(repo, when, report.problems, async () => undefined)
  report.blocksChecked += checked?.blockCount ?? 0
  report.pinsChecked += checked?.pinCount ?? 0
}

/**
 * Opens the repository as the next command would and checks it: it opens, every block
 * verifies, every pin reads back whole (each block hashed). What is wrong goes to `problems`;
 * `then` looks further while the repository is open. Undefined if it did not open.
 */
export async function checkRepository<T>(repo: string, when: string, problems: string[], then: (node: ShoalNode) => Promise<T>): Promise<{ blockCount: number; pinCount: number; value: T } | undefined> {
  let node: ShoalNode
  try {
    node = await ShoalNode.open(repo)
  } catch (error) {
    problems.push(`${when}: the repository did not open: ${(error as Error).message}`)
    return undefined
  }
  try {
    const verify = await node.repoVerify()
    for (const cid of verify.corrupt) problems.push(`${when}: block ${cid} is corrupt`)
    const pins = await node.pinLs()
    for (const pin of pins) {
      try {
        for await (const _chunk of node.cat(pin.cid)) { /* every block read is hashed */ }
      } catch (error) {
        problems.push(`${when}: pin ${pin.cid} is incomplete: ${(error as Error).message}`)
      }
    }
    return { blockCount: verify.blockCount, pinCount: pins.length, value: await then(node) }
  } finally {
    await node.close()
  }
}
