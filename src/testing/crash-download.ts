/**
 * Crash safety of a swarm download: a leecher daemon fetches a file from a seeder daemon, both
 * on loopback, and is killed with SIGKILL at a seeded random instant of the fetch, again and
 * again, each restart resuming from what it holds (once it holds the whole file, from an empty
 * repository). After every kill its repository is opened in this process and checked (it
 * opens, every block verifies, every pin is complete), and the bytes it holds of the file's
 * blocks are counted: every block of the DAG, at any depth (the CID profile sets the depth:
 * unixfs-v0-2015's 174 links of 256 KiB make a file past 43.5 MiB two levels deep). At the end
 * a fetch runs to completion and reports what it received: no more than what was missing,
 * with one seeder.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import type { CidProfile } from '../core/content/cid-profile.ts'
import { Prng } from '../core/prng.ts'
import { daemonApi, runShoal, startDaemon } from './cli.ts'
import { checkRepository } from './crash-add.ts'
import { pseudoRandomBytes, type HasAfter } from './temp.ts'

export interface DownloadCrashReport {
  kills: number
  killAfterMs: number[]
  /** An uninterrupted fetch of the file by a fresh leecher, API call to result. */
  fetchMs: number
  fileBytes: number
  /** The file's DAG: its blocks and their levels below the root (1: the root's children are leaves). */
  dagBlocks: number
  dagDepth: number
  /** What the leecher held after each kill: bytes of the file's blocks, its root's included. */
  heldBytes: number[]
  /** Kills that found the file whole; the repository was then emptied for the next round. */
  completedBeforeKill: number
  /** The final fetch: what it received, and what was missing when it started (blocks' bytes, as heldBytes). */
  finalReceivedBytes: number
  finalMissingBytes: number
  problems: string[]
}

const MiB = 1024 * 1024

export async function crashDownloads(t: HasAfter, directory: string, options: { kills: number; fileMib: number; seed: string; cidProfile?: CidProfile }): Promise<DownloadCrashReport> {
  const prng = Prng.fromSeed(`crash-download/${options.seed}`)
  await mkdir(directory, { recursive: true })
  const source = join(directory, 'source.bin')
  const fileBytes = options.fileMib * MiB
  await writeFile(source, pseudoRandomBytes(fileBytes, 11))
  const seeder = await startDaemon(t, join(directory, 'seeder'))
  const added = await runShoal(['--repo', seeder.repo, 'add', '--quiet', ...(options.cidProfile === undefined ? [] : ['--cid-profile', options.cidProfile]), source])
  if (added.code !== 0) throw new Error(`add on the seeder failed: ${added.stderr}`)
  const cid = added.stdout.trim()

  const reference = await startDaemon(t, join(directory, 'reference'), { bootstrap: [seeder.address] })
  const startedMs = performance.now()
  await daemonApi(reference).fetch(cid)
  const fetchMs = performance.now() - startedMs
  reference.process.kill('SIGKILL')
  await new Promise((resolve) => reference.process.once('exit', resolve))
  const problems: string[] = []
  const dag = await dagOf(join(directory, 'reference'), cid, problems)
  // What a whole copy holds: the file's bytes and its inner nodes'.
  const dagBytes = await check(join(directory, 'reference'), dag, problems, 'after the reference fetch')

  const repo = join(directory, 'leecher')
  const report: DownloadCrashReport = { kills: 0, killAfterMs: [], fetchMs, fileBytes, dagBlocks: dag.blocks.length, dagDepth: dag.depth, heldBytes: [], completedBeforeKill: 0, finalReceivedBytes: 0, finalMissingBytes: 0, problems }
  let held = 0
  for (let kill = 0; kill < options.kills; kill++) {
    const leecher = await startDaemon(t, repo, { bootstrap: [seeder.address] })
    // Within the time a whole fetch takes from a fresh start (finding the seeder included).
    const delayMs = prng.int(Math.ceil(fetchMs))
    const fetching = daemonApi(leecher).fetch(cid).catch(() => undefined)
    await sleep(delayMs)
    leecher.process.kill('SIGKILL')
    await new Promise((resolve) => leecher.process.once('exit', resolve))
    await fetching
    report.kills++
    report.killAfterMs.push(delayMs)
    held = await check(repo, dag, report.problems, `kill ${kill} at ${delayMs} ms`)
    report.heldBytes.push(held)
    if (held === dagBytes) {
      // Done before the kill: the next rounds start over from an empty repository.
      report.completedBeforeKill++
      await rm(repo, { recursive: true, force: true })
      held = 0
    }
  }
  report.finalMissingBytes = dagBytes - held
  const leecher = await startDaemon(t, repo, { bootstrap: [seeder.address] })
  const result = await daemonApi(leecher).fetch(cid)
  report.finalReceivedBytes = result.bytesReceived
  leecher.process.kill('SIGKILL')
  await new Promise((resolve) => leecher.process.once('exit', resolve))
  held = await check(repo, dag, report.problems, 'after the final fetch')
  if (held !== dagBytes) report.problems.push(`after the final fetch the leecher holds ${held} of ${dagBytes} bytes`)
  return report
}

interface Dag {
  blocks: Array<{ cid: CID; bytes: number }>
  depth: number
}

/** Every block of the DAG under `root`, read from a repository that holds it whole. */
async function dagOf(repo: string, root: string, problems: string[]): Promise<Dag> {
  const checked = await checkRepository(repo, 'reading the whole DAG', problems, async (node) => {
    const dag: Dag = { blocks: [], depth: 0 }
    const visit = async (cid: CID, level: number): Promise<void> => {
      const block = await node.repo.blocks.get(cid)
      dag.blocks.push({ cid, bytes: block.byteLength })
      dag.depth = Math.max(dag.depth, level)
      if (cid.code !== dagPb.code) return
      for (const link of dagPb.decode(block).Links) await visit(link.Hash, level + 1)
    }
    await visit(CID.parse(root), 0)
    return dag
  })
  if (checked === undefined) throw new Error(`the reference repository did not open: ${problems.join('; ')}`)
  return checked.value
}

/** Checks the repository (checkRepository); resolves with the bytes it holds of the DAG's blocks. */
async function check(repo: string, dag: Dag, problems: string[], when: string): Promise<number> {
  const checked = await checkRepository(repo, when, problems, async (node) => {
    let held = 0
    for (const { cid, bytes } of dag.blocks) {
      if (await node.repo.blocks.has(cid)) held += bytes
    }
    return held
  })
  return checked?.value ?? 0
}
