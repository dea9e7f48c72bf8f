/**
 * Four real daemons on loopback running the DHT as servers: `shoal add` provides what it
 * adds, the others find the provider and each other's addresses, a signed IPNS record put
 * by one is read back by another, and bad input fails with one line.
 */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createIPNSRecord, marshalIPNSRecord } from 'ipns'
import type { DhtTable } from '../node/api.ts'
import { eventually, runShoal, startDaemon, type Daemon } from '../testing/cli.ts'
import { tempDir } from '../testing/temp.ts'

const SERVER = { 'dht.mode': 'server' }

test('daemons provide, find providers and peers, and store IPNS records in the DHT', { timeout: 180_000 }, async (t) => {
  const dir = await tempDir(t)
  const first = await startDaemon(t, join(dir, 'n0'), { config: SERVER })
  const daemons: Daemon[] = [first]
  for (let index = 1; index < 4; index++) daemons.push(await startDaemon(t, join(dir, `n${index}`), { bootstrap: [first.address], config: SERVER }))
  const shoal = (daemon: Daemon, ...args: string[]) => runShoal(['--repo', daemon.repo, ...args])

  // Every routing table fills with the three others.
  for (const daemon of daemons) {
    await eventually(`${daemon.peerId}'s routing table`, async () => {
      const table = JSON.parse((await shoal(daemon, 'dht', 'table', '--json')).stdout) as DhtTable
      return table.mode === 'server' && table.size === 3 ? table : undefined
    }, 60_000)
  }

  const file = join(dir, 'content.txt')
  await writeFile(file, 'provided through the DHT\n')
  const added = await shoal(daemons[1]!, 'add', '--quiet', file)
  assert.equal(added.code, 0, added.stderr)
  const cid = added.stdout.trim()
  const providers = await eventually('the provider record', async () => {
    const found = await shoal(daemons[3]!, 'dht', 'find-providers', cid, '--json')
    if (found.code !== 0) return undefined
    const result = JSON.parse(found.stdout) as { providers: Array<{ peerId: string; addresses: string[] }> }
    return result.providers.length > 0 ? result.providers : undefined
  })
  assert.equal(providers[0]!.peerId, daemons[1]!.peerId)
  assert.ok(providers[0]!.addresses.some((address) => address.startsWith('/ip4/127.0.0.1/tcp/')))

  const found = await shoal(daemons[2]!, 'dht', 'find-peer', daemons[3]!.peerId, '--json')
  assert.equal(found.code, 0, found.stderr)
  assert.equal((JSON.parse(found.stdout) as { peerId: string }).peerId, daemons[3]!.peerId)

  const provided = await shoal(daemons[0]!, 'dht', 'provide', cid)
  assert.equal(provided.code, 0, provided.stderr)
  assert.match(provided.stdout, /^provided \S+ to 3 peers/)

  // An IPNS record, signed by a key of its own, put by one daemon and read by another.
  const key = await generateKeyPair('Ed25519')
  const name = peerIdFromPrivateKey(key).toString()
  const record = marshalIPNSRecord(await createIPNSRecord(key, `/ipfs/${cid}`, 1n, 3_600_000))
  const recordFile = join(dir, 'record.bin')
  await writeFile(recordFile, record)
  const put = await shoal(daemons[1]!, 'dht', 'put', `/ipns/${name}`, recordFile)
  assert.equal(put.code, 0, put.stderr)
  assert.match(put.stdout, /^stored on 3 peers/)
  const got = await shoal(daemons[3]!, 'dht', 'get', `/ipns/${name}`, '--json')
  assert.equal(got.code, 0, got.stderr)
  assert.deepEqual(new Uint8Array(Buffer.from((JSON.parse(got.stdout) as { value: string }).value, 'base64')), new Uint8Array(record))

  // Bad input: one line each, non-zero exit.
  const garbageFile = join(dir, 'garbage.bin')
  await writeFile(garbageFile, 'not a record')
  for (const [args, message] of [
    [['dht', 'put', `/ipns/${name}`, garbageFile], /^shoal: the value is not a valid record for its key\n$/],
    [['dht', 'get', '/other/key'], /^shoal: not a DHT record key: \/other\/key/],
    [['dht', 'find-peer', 'not-a-peer'], /^shoal: not a peer id: not-a-peer\n$/],
    [['dht', 'find-providers', 'not-a-cid'], /^shoal: /],
    [['dht', 'find-providers', cid, '--max', '0'], /^shoal: --max must be an integer from 1 to 1000\n$/],
  ] as const) {
    const result = await shoal(daemons[2]!, ...args)
    assert.notEqual(result.code, 0, args.join(' '))
    assert.match(result.stderr, message)
    assert.equal(result.stderr.split('\n').length, 2, result.stderr)
  }
})

test('dht commands need the daemon', async (t) => {
  const repo = join(await tempDir(t), 'repo')
  assert.equal((await runShoal(['--repo', repo, 'init'])).code, 0)
  const result = await runShoal(['--repo', repo, 'dht', 'table'])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /^shoal: the node is offline: start it with `shoal daemon`\n$/)
})
