/**
 * Interop with the reference implementation: a stock js-libp2p node running @libp2p/kad-dht
 * as a server on /ipfs/kad/1.0.0, and Shoal daemons speaking the same protocol, on
 * loopback. The daemons bootstrap to the reference node only, so they find one another
 * through its DHT answers alone. Each side finds providers the other announced, resolves
 * the other's peer record and reads the other's public-key records; neither refuses
 * anything the other sends (Shoal's wire refusals, the reference's logged errors).
 */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { noise } from '@chainsafe/libp2p-noise'
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import type { PeerInfo } from '@libp2p/interface'
import { kadDHT, passthroughMapper, type KadDHTComponents, type SingleKadDHT } from '@libp2p/kad-dht'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { DhtPeer, DhtTable, NodeStats } from '../node/api.ts'
import { eventually, runShoal, startDaemon, type Daemon } from '../testing/cli.ts'
import { errorRecorder } from '../testing/libp2p.ts'
import { onCleanup, tempDir, type HasAfter } from '../testing/temp.ts'
import { KAD_PROTOCOL_PUBLIC } from '../wire/kad.ts'


const PUBLIC_SERVER = { 'dht.mode': 'server', 'dht.protocol': KAD_PROTOCOL_PUBLIC }
const DAEMON_COUNT = 3
const QUERY_MS_MAX = 10_000
const LOOPBACK_TCP = '/ip4/127.0.0.1/tcp/'

test('Shoal and @libp2p/kad-dht find each other\'s providers, peers and records on /ipfs/kad/1.0.0', { timeout: 150_000 }, async (t) => {
  const { reference, errors } = await referenceNode(t)
  const dht = reference.services.dht
  const referenceId = reference.peerId.toString()
  const referenceAddress = reference.getMultiaddrs()[0]!.toString()

  const dir = await tempDir(t)
  const daemons = await Promise.all(Array.from({ length: DAEMON_COUNT }, (_, index) => startDaemon(t, join(dir, `n${index}`), { bootstrap: [referenceAddress], config: PUBLIC_SERVER })))
  const shoal = (daemon: Daemon, ...args: string[]) => runShoal(['--repo', daemon.repo, ...args])
  const contacts = async (daemon: Daemon) => (JSON.parse((await shoal(daemon, 'dht', 'table', '--json')).stdout) as DhtTable).buckets.flatMap((bucket) => bucket.contacts)
  const stats = async (daemon: Daemon) => JSON.parse((await shoal(daemon, 'stats', '--json')).stdout) as NodeStats
  const kadCounter = (figures: NodeStats, counter: string) => figures['shoal_kad_total']![`counter=${counter}`]!

  // Both sides talked DHT: the reference holds every daemon in its table, and every daemon
  // holds the reference and, learnt from the reference's answers, the other daemons.
  await eventually('the reference routing table', async () => (dht.routingTable.size === DAEMON_COUNT ? true : undefined))
  for (const daemon of daemons) {
    // A daemon that looked itself up before the others had joined learns of them from their
    // own lookups, once they have started: on a loaded machine that can take over 30 s.
    const table = await eventually(`${daemon.peerId}'s routing table`, async () => {
      const found = await contacts(daemon)
      return found.length === DAEMON_COUNT ? found : undefined
    }, 60_000)
    const referenceContact = table.find((contact) => contact.peerId === referenceId)
    assert.ok(referenceContact !== undefined, `${daemon.peerId} lacks the reference`)
    assert.ok(referenceContact.addresses.some((address) => address.startsWith(LOOPBACK_TCP)), JSON.stringify(referenceContact))
  }

  // The reference provides: every daemon stores its record, and a daemon finds it, with its addresses.
  const storedBefore = await Promise.all(daemons.map(async (daemon) => kadCounter(await stats(daemon), 'providersStored')))
  const referenceCid = CID.create(1, raw.code, await sha256.digest(new TextEncoder().encode('provided by the reference')))
  const acceptedBy = new Set<string>()
  for await (const event of dht.provide(referenceCid, { signal: AbortSignal.timeout(QUERY_MS_MAX) })) {
    if (event.name === 'PEER_RESPONSE' && event.messageName === 'ADD_PROVIDER') acceptedBy.add(event.from.toString())
  }
  assert.deepEqual([...acceptedBy].sort(), daemons.map((daemon) => daemon.peerId).sort())
  const storedAfter = await Promise.all(daemons.map(async (daemon) => kadCounter(await stats(daemon), 'providersStored')))
  assert.deepEqual(storedAfter, storedBefore.map((count) => count + 1))
  const found = await eventually('the reference as provider', async () => {
    const result = await shoal(daemons[2]!, 'dht', 'find-providers', referenceCid.toString(), '--json')
    if (result.code !== 0) return undefined
    return (JSON.parse(result.stdout) as { providers: DhtPeer[] }).providers.find((provider) => provider.peerId === referenceId)
  })
  assert.ok(found.addresses.some((address) => address.startsWith(LOOPBACK_TCP)), JSON.stringify(found))

  // A daemon provides (`shoal add`): the reference stores its record (it lists the daemon
  // among the providers it holds itself) and finds it, with its addresses.
  const file = join(dir, 'content.txt')
  await writeFile(file, 'provided by Shoal\n')
  const added = await shoal(daemons[1]!, 'add', '--quiet', file)
  assert.equal(added.code, 0, added.stderr)
  const shoalCid = CID.parse(added.stdout.trim())
  const heldByReference = await eventually('Shoal\'s provider record at the reference', async () => {
    for await (const event of dht.findProviders(shoalCid, { signal: AbortSignal.timeout(QUERY_MS_MAX) })) {
      if (event.name !== 'PROVIDER' || event.from.toString() !== referenceId) continue
      const provider = event.providers.find((peer) => peer.id.toString() === daemons[1]!.peerId)
      if (provider !== undefined) return provider
    }
    return undefined
  })
  assert.ok(heldByReference.multiaddrs.some((address) => `${address.toString()}/p2p/${daemons[1]!.peerId}` === daemons[1]!.address), String(heldByReference.multiaddrs))
  const shoalProvider = await firstProvider(reference.contentRouting.findProviders(shoalCid, { signal: AbortSignal.timeout(QUERY_MS_MAX) }), daemons[1]!.peerId)
  assert.ok(shoalProvider?.multiaddrs.some((address) => address.toString().startsWith(LOOPBACK_TCP)), String(shoalProvider?.multiaddrs))

  // Peer records: a daemon resolves the reference, and the reference, asking the network
  // rather than its peer store, resolves a daemon.
  const peer = await shoal(daemons[0]!, 'dht', 'find-peer', referenceId, '--json')
  assert.equal(peer.code, 0, peer.stderr)
  const resolvedByShoal = JSON.parse(peer.stdout) as DhtPeer
  assert.equal(resolvedByShoal.peerId, referenceId)
  assert.ok(resolvedByShoal.addresses.includes(referenceAddress.replace(`/p2p/${referenceId}`, '')), peer.stdout)
  const resolvedByReference = await findPeerOnline(dht, daemons[2]!.peerId)
  assert.ok(resolvedByReference?.multiaddrs.some((address) => `${address.toString()}/p2p/${daemons[2]!.peerId}` === daemons[2]!.address), String(resolvedByReference?.multiaddrs))

  // Values: a daemon reads the reference's public-key record (served from its peer store), and
  // the reference reads one a daemon put, checking the record with its own validator.
  const referenceKey = await shoal(daemons[0]!, 'dht', 'get', `/pk/${referenceId}`, '--json')
  assert.equal(referenceKey.code, 0, referenceKey.stderr)
  assert.deepEqual(new Uint8Array(Buffer.from((JSON.parse(referenceKey.stdout) as { value: string }).value, 'base64')), publicKeyToProtobuf(reference.peerId.publicKey!))
  const key = await generateKeyPair('Ed25519')
  const keyId = peerIdFromPrivateKey(key)
  const keyFile = join(dir, 'public-key.bin')
  await writeFile(keyFile, publicKeyToProtobuf(key.publicKey))
  const put = await shoal(daemons[1]!, 'dht', 'put', `/pk/${keyId}`, keyFile)
  assert.equal(put.code, 0, put.stderr)
  const recordKey = new Uint8Array([...new TextEncoder().encode('/pk/'), ...keyId.toMultihash().bytes])
  let value: Uint8Array | undefined
  for await (const event of dht.get(recordKey, { signal: AbortSignal.timeout(QUERY_MS_MAX) })) if (event.name === 'VALUE') value = event.value
  assert.deepEqual(value, publicKeyToProtobuf(key.publicKey))

  // Neither side refused anything the other sent.
  for (const figures of await Promise.all(daemons.map(stats))) {
    assert.deepEqual(figures['shoal_wire_rejected_total'], {})
    for (const counter of ['peersDroppedByDecoder', 'valuesReceivedInvalid', 'providersRejectedNotSender']) assert.equal(kadCounter(figures, counter), 0, counter)
    // An answer of the wrong type counts as unexpected, and so does one that came after its
    // request timed out, which a loaded machine can cause: only the latter may happen here.
    assert.ok(kadCounter(figures, 'responsesUnexpected') <= kadCounter(figures, 'requestsTimedOut'), JSON.stringify(figures['shoal_kad_total']))
  }
  assert.deepEqual(errors, [])
})

test('the reference resolves a Shoal daemon that only it knows, by asking the daemon itself', { timeout: 30_000 }, async (t) => {
  const { reference, errors } = await referenceNode(t)
  const dht = reference.services.dht
  const daemon = await startDaemon(t, join(await tempDir(t), 'n0'), { bootstrap: [reference.getMultiaddrs()[0]!.toString()], config: PUBLIC_SERVER })
  await eventually('the reference routing table', async () => (dht.routingTable.size === 1 ? true : undefined))
  const resolved = await findPeerOnline(dht, daemon.peerId)
  assert.ok(resolved?.multiaddrs.some((address) => `${address.toString()}/p2p/${daemon.peerId}` === daemon.address), String(resolved?.multiaddrs))
  assert.deepEqual(errors, [])
})

/**
 * The reference: a stock js-libp2p node (TCP, Noise, Yamux, identify, ping, as Shoal's host
 * has) with @libp2p/kad-dht as a server on /ipfs/kad/1.0.0, stopped at cleanup. `errors`
 * collects what its DHT logs as errors: a refused message or a failed request shows there.
 */
async function referenceNode(t: HasAfter) {
  const errors: string[] = []
  const reference = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    logger: errorRecorder(errors, 'libp2p:kad-dht', timedOut),
    services: {
      identify: identify(),
      ping: ping(),
      // Loopback addresses are private: the default mapper would strip them from every answer.
      dht: kadDHT({ protocol: KAD_PROTOCOL_PUBLIC, clientMode: false, peerInfoMapper: passthroughMapper }) as (components: KadDHTComponents) => SingleKadDHT,
    },
  })
  onCleanup(t, () => reference.stop())
  return { reference, errors }
}

/** findPeer past the peer store (useCache: false): only a DHT answer can resolve it. */
async function findPeerOnline(dht: SingleKadDHT, peer: string): Promise<PeerInfo | undefined> {
  let resolved: PeerInfo | undefined
  for await (const event of dht.findPeer(peerIdFromString(peer), { useCache: false, signal: AbortSignal.timeout(QUERY_MS_MAX) })) {
    if (event.name === 'FINAL_PEER' && event.peer.id.toString() === peer) resolved = event.peer
  }
  return resolved
}

/** The provider `peer` among those yielded, ending the search there. */
async function firstProvider(providers: AsyncIterable<PeerInfo>, peer: string): Promise<PeerInfo | undefined> {
  for await (const provider of providers) if (provider.id.toString() === peer) return provider
  return undefined
}

/** Timeouts and aborts, which a loaded machine causes and which refuse nothing. */
function timedOut(arg: unknown): boolean {
  return arg instanceof Error && (arg.name === 'TimeoutError' || arg.name === 'AbortError')
}
