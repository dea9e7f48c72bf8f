/**
 * The swarm in the node, in-process, against a hostile peer that speaks the protocol
 * through the real driver: it offers the content, unchokes, and answers every request with
 * bytes that do not match the CID. Nothing it sends is stored; it is banned, disconnected
 * and recorded in the ledger; the download completes from an honest node.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { getEventListeners } from 'node:events'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import type { Millis, NetworkAction, NetworkInput } from '../core/sans-io.ts'
import { Bitfield } from '../core/swarm/bitfield.ts'
import type { SwarmMessage } from '../core/swarm/messages.ts'
import { ProtocolDriver } from '../net/protocol-driver.ts'
import { eventually } from '../testing/cli.ts'
import { testLibp2p } from '../testing/libp2p.ts'
import { onCleanup, tempDir } from '../testing/temp.ts'
import type { Network } from './network.ts'
import { NodeMetrics } from '../net/metrics.ts'
import { initRepo } from './repo.ts'
import { ShoalNode } from './shoal-node.ts'
import { swarmCodec } from '../wire/swarm.ts'

async function onlineNode(t: TestContext): Promise<{ node: ShoalNode; network: Network }> {
  const path = join(await tempDir(t), 'repo')
  await initRepo(path)
  const node = await ShoalNode.open(path)
  onCleanup(t, () => node.close())
  const network = await node.startNetwork({ listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
  return { node, network }
}

/** Claims every content it is asked about (one leaf), unchokes at once, and serves garbage. */
class PoisoningSeed {
  readonly #actions: NetworkAction<SwarmMessage>[] = []
  handle(_now: Millis, input: NetworkInput<SwarmMessage>): void {
    if (input.type !== 'message') return
    const { from, message } = input
    if (message.type === 'bitfield') {
      this.#actions.push({ type: 'send', to: from, message: { type: 'bitfield', root: message.root, leafCount: 1, bits: Bitfield.full(1).bytes } })
      this.#actions.push({ type: 'send', to: from, message: { type: 'unchoke', root: message.root } })
    } else if (message.type === 'request') {
      this.#actions.push({ type: 'send', to: from, message: { type: 'block', root: message.root, block: message.block, data: new Uint8Array(randomBytes(4096)) } })
    }
  }
  poll(): NetworkAction<SwarmMessage> | undefined {
    return this.#actions.shift()
  }
  nextDeadline(): Millis | undefined {
    return undefined
  }
}

test('a peer serving bad blocks is banned and nothing it sent is stored; the fetch completes from an honest peer', { timeout: 60_000 }, async (t) => {
  const [honest, fetcher] = await Promise.all([onlineNode(t), onlineNode(t)])
  const [added] = await honest.node.add((async function* () {
    yield { kind: 'file' as const, path: '', content: (async function* () { yield new Uint8Array(randomBytes(4096)) })() }
  })())
  const cid = added!.cid

  const libp2p = await testLibp2p(t)
  const driver = new ProtocolDriver({ libp2p, codec: swarmCodec, core: new PoisoningSeed(), now: Date.now, onAction: () => {}, metrics: new NodeMetrics(() => []) })
  await driver.start()
  onCleanup(t, () => driver.stop())
  await fetcher.node.swarmConnect(libp2p.getMultiaddrs()[0]!.toString())

  const fetched = fetcher.node.fetch(cid)
  const counters = fetcher.network.swarm.core.counters
  await eventually('the bad block to be refused', async () => (counters.badBlocks > 0 ? true : undefined), 20_000)
  assert.equal(counters.peersBanned, 1)
  await eventually('the poisoner to be disconnected', async () => (libp2p.getConnections().length === 0 ? true : undefined), 10_000)
  assert.deepEqual((await fetcher.node.repoStat()).blockCount, 0, 'nothing was stored')
  const ledger = await fetcher.node.swarmLedger()
  assert.equal(ledger.find((entry) => entry.peer === libp2p.peerId.toString())?.misbehaviours['bad-block'], 1)

  await fetcher.node.swarmConnect(honest.network.announcedAddresses()[0]!)
  const result = await fetched
  assert.equal(result.cid, cid)
  assert.deepEqual(await fetcher.node.repoVerify(), { blockCount: 1, corrupt: [] })
  // The poisoner dialling back is refused by the swarm at once.
  await libp2p.dial(fetcher.network.host.getMultiaddrs()[0]!).catch(() => undefined)
  await eventually('the banned peer to be hung up on', async () => (libp2p.getConnections().length === 0 ? true : undefined), 10_000)
})

test('content gc removed, whole or in part, is downloaded again by a later fetch, not found complete at once', { timeout: 60_000 }, async (t) => {
  const [seeder, fetcher, asker] = await Promise.all([onlineNode(t), onlineNode(t), onlineNode(t)])
  // Leaves under a dag-pb root, the store naming its blocks as raw CIDs.
  const bytes = new Uint8Array(randomBytes(2_500_000))
  const [added] = await seeder.node.add((async function* () {
    yield { kind: 'file' as const, path: '', content: (async function* () { yield bytes })() }
  })())
  const cid = added!.cid
  await fetcher.node.swarmConnect(seeder.network.announcedAddresses()[0]!)
  const counters = fetcher.network.swarm.core.counters
  await fetcher.node.fetch(cid, { pin: false })
  // Another peer fetching from it makes the fetcher look the content up and seed it.
  await asker.node.swarmConnect(fetcher.network.announcedAddresses()[0]!)
  await asker.node.fetch(cid)
  assert.ok((await fetcher.node.gc()).removedBlockCount > 0, 'gc removed nothing')
  assert.equal((await fetcher.node.repoStat()).blockCount, 0)

  // A signal that outlives the fetches, as a daemon's own would: a settled fetch leaves no listener on it.
  const longLived = new AbortController()
  const fetchAgain = async (which: string): Promise<void> => {
    const receivedBefore = counters.bytesReceived
    await fetcher.node.fetch(cid, { pin: false, signal: longLived.signal })
    assert.equal(getEventListeners(longLived.signal, 'abort').length, 0, `the ${which} fetch left its abort listener`)
    assert.ok(counters.bytesReceived - receivedBefore >= bytes.byteLength, `the ${which} fetch received ${counters.bytesReceived - receivedBefore} bytes`)
    assert.deepEqual(Buffer.concat(await Array.fromAsync(fetcher.node.cat(cid))), Buffer.from(bytes))
  }
  await fetchAgain('second')

  // A direct pin keeps the root and lets gc take the leaves: the content is no longer whole.
  await fetcher.node.pinAdd(cid, { recursive: false })
  assert.ok((await fetcher.node.gc()).removedBlockCount > 0, 'gc removed no leaf')
  assert.equal((await fetcher.node.repoStat()).blockCount, 1)
  await fetchAgain('third')
})
