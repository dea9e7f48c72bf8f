/**
 * Real daemons on loopback moving content with /shoal/swarm/1.0.0: `shoal get` on a daemon
 * that was only told of the origin fetches the file and writes it byte for byte; a second
 * leecher fetches while the origin is gone, from the first leecher, which seeds what it
 * fetched; `shoal cat` streams; the API's fetch reports progress; the ledger records who
 * gave what; bad input fails with one line.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { HttpClient } from '../api/http-client.ts'
import type { FetchProgress, LedgerEntry } from '../node/api.ts'
import { runShoal, startDaemon, type Daemon } from '../testing/cli.ts'
import { tempDir } from '../testing/temp.ts'

const FILE_BYTES = 6 * 1024 * 1024 + 12_345

test('daemons fetch a file from the swarm, seed it on, and stream it with cat', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t)
  // Text, so that cat's output survives the test's string capture byte for byte.
  const content = Buffer.from(randomBytes(FILE_BYTES).toString('base64').slice(0, FILE_BYTES))
  const digest = createHash('sha256').update(content).digest('hex')
  const source = join(dir, 'source.bin')
  await writeFile(source, content)

  const origin = await startDaemon(t, join(dir, 'origin'))
  const shoal = (daemon: Daemon, ...args: string[]) => runShoal(['--repo', daemon.repo, ...args])
  const added = await shoal(origin, 'add', '-q', source)
  assert.equal(added.code, 0, added.stderr)
  const cid = added.stdout.trim()

  const first = await startDaemon(t, join(dir, 'first'), { bootstrap: [origin.address] })
  const output = join(dir, 'out.bin')
  const got = await shoal(first, 'get', cid, '-o', output)
  assert.equal(got.code, 0, got.stderr)
  assert.equal(createHash('sha256').update(await readFile(output)).digest('hex'), digest, 'the file arrives byte for byte')
  const pins = await shoal(first, 'pin', 'ls')
  assert.match(pins.stdout, new RegExp(cid), 'fetched content is pinned')

  // The ledger of the first leecher: everything came from the origin.
  const ledger = JSON.parse((await shoal(first, 'swarm', 'ledger', '--json')).stdout) as LedgerEntry[]
  const fromOrigin = ledger.find((entry) => entry.peer === origin.peerId)
  assert.ok(fromOrigin !== undefined && fromOrigin.bytesReceived >= FILE_BYTES, JSON.stringify(ledger))

  // The origin leaves; a second leecher, told only of the first, fetches from it through the API.
  origin.process.kill('SIGTERM')
  const second = await startDaemon(t, join(dir, 'second'), { bootstrap: [first.address] })
  const api = new HttpClient((await readFile(join(second.repo, 'api'), 'utf8')).trim())
  const progress: FetchProgress[] = []
  const result = await api.fetch(cid, { onProgress: (update) => progress.push(update) })
  assert.equal(result.cid, cid)
  assert.equal(result.totalBytes, FILE_BYTES)
  assert.ok(result.bytesReceived >= FILE_BYTES)
  assert.ok(progress.length >= 1 && progress.at(-1)!.phase === 'complete', JSON.stringify(progress.at(-1)))
  const cat = await shoal(second, 'cat', cid)
  assert.equal(cat.code, 0, cat.stderr)
  assert.equal(createHash('sha256').update(cat.stdout).digest('hex'), digest)

  // A third daemon streams with cat straight away: the read drives an in-order download.
  const third = await startDaemon(t, join(dir, 'third'), { bootstrap: [second.address] })
  const streamed = await runShoal(['--repo', third.repo, 'cat', cid])
  assert.equal(streamed.code, 0, streamed.stderr)
  assert.equal(createHash('sha256').update(streamed.stdout).digest('hex'), digest)

  const bad = await shoal(second, 'get', 'not-a-cid')
  assert.notEqual(bad.code, 0)
  assert.match(bad.stderr, /^shoal: invalid CID/)
  assert.equal(bad.stderr.trim().split('\n').length, 1)
})

test('a download killed mid-way resumes from the blocks it stored, fetching only the rest', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t)
  const fileBytes = 16 * 1024 * 1024
  const source = join(dir, 'source.bin')
  await writeFile(source, randomBytes(fileBytes))
  // A slow origin, so that the leecher can be killed half-way.
  const origin = await startDaemon(t, join(dir, 'origin'), { args: ['--max-upload', '4MiB'] })
  const added = await runShoal(['--repo', origin.repo, 'add', '-q', source])
  assert.equal(added.code, 0, added.stderr)
  const cid = added.stdout.trim()
  const leecherRepo = join(dir, 'leecher')
  const leecher = await startDaemon(t, leecherRepo, { bootstrap: [origin.address] })
  const api = new HttpClient((await readFile(join(leecherRepo, 'api'), 'utf8')).trim())
  let heldBeforeKill = 0
  await assert.rejects(api.fetch(cid, {
    onProgress: (progress) => {
      heldBeforeKill = progress.heldCount
      if (progress.heldCount >= 6) leecher.process.kill('SIGKILL')
    },
  }))
  await new Promise((resolve) => leecher.process.once('exit', resolve))
  assert.ok(heldBeforeKill >= 6)

  const restarted = await startDaemon(t, leecherRepo, { bootstrap: [origin.address] })
  const resumedApi = new HttpClient((await readFile(join(restarted.repo, 'api'), 'utf8')).trim())
  const result = await resumedApi.fetch(cid)
  const leafBytes = 1024 * 1024
  const leafCount = fileBytes / leafBytes
  assert.equal(result.leafCount, leafCount)
  // Every block verified and stored before the kill survived it, and was not fetched again.
  const fetchedLeaves = Math.round(result.bytesReceived / leafBytes)
  assert.ok(fetchedLeaves <= leafCount - heldBeforeKill, `the resumed fetch got ${fetchedLeaves} of ${leafCount} leaves; ${heldBeforeKill} were held before the kill`)
  const verified = await runShoal(['--repo', restarted.repo, 'repo', 'verify'])
  assert.equal(verified.code, 0, verified.stderr)
})
