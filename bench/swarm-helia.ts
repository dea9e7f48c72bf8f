/**
 * bench:swarm's Helia system: Helia 7 assembled from its own parts as createHelia() does
 * (createHeliaLight, then withLibp2pLight, then withBitswap), minus what has no place on a
 * loopback testbed: no trustless-gateway (HTTP) broker, no libp2p defaults (DHT, AutoNAT,
 * UPnP, relay, WebRTC), so bitswap is the only way blocks move and nothing is routed. libp2p
 * has Shoal's stack (TCP, Noise, Yamux, identify, ping) with the per-IP inbound rate limit
 * lifted, as every connection comes from 127.0.0.1 (libp2p's default refuses the sixth
 * connection within a second). Blocks and data in memory (Helia's defaults).
 * One more departure from Shoal's stack: libp2p's connection monitor does not close a
 * connection whose ping failed. Its ping (every 10 s) waits behind the blocks queued on the
 * same connection, and with 9 processes on 2 cores it often timed out; the monitor then
 * closed the leecher's only connection to the seed, and with no routing the leecher never
 * found the seed again: half of the B runs stalled until the transfer timeout. Kept, that
 * measures the testbed rather than bitswap. (The raw stream and Shoal keep the monitor's
 * default, as createHost does: their transfers are exposed to it.)
 *   - Seed: imports the file with @helia/unixfs's defaults (CIDv1, raw leaves, 1 MiB
 *     fixed-size chunks, balanced DAG) before it reports ready.
 *   - Leecher: dials the seed by multiaddr, then `cat`s the root CID, hashing the bytes.
 */
import { createReadStream } from 'node:fs'
import { noise } from '@chainsafe/libp2p-noise'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { unixfs } from '@helia/unixfs'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createHeliaLight } from 'helia'
import { CID } from 'multiformats/cid'
import { HOST_LIMITS, REFERENCE_CONNECTION_MANAGER } from './loopback-host.ts'
import { ByteCounter, type SystemRoles } from './swarm-child.ts'

async function startHelia() {
  const helia = withBitswap(withLibp2pLight(createHeliaLight(), {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxInboundStreams: HOST_LIMITS.streamsPerConnectionMax })],
    connectionManager: REFERENCE_CONNECTION_MANAGER,
    // See the module comment: a lost connection is never re-made here.
    connectionMonitor: { abortConnectionOnPingFailure: false },
    services: { identify: identify(), ping: ping() },
  }))
  // Helia 7 does not start itself.
  await helia.start()
  return helia
}

export const heliaRoles: SystemRoles = {
  async seed(file) {
    const helia = await startHelia()
    const cid = await unixfs(helia).addByteStream(createReadStream(file, { highWaterMark: 1024 * 1024 }))
    const address = helia.libp2p.getMultiaddrs().map(String).find((text) => text.startsWith('/ip4/127.0.0.1/tcp/'))
    if (address === undefined) throw new Error('the Helia seed has no loopback TCP address')
    return { address, cid: cid.toString() }
  },

  async leecher({ seed }) {
    const helia = await startHelia()
    const cid = CID.parse(String(seed['cid']))
    return {
      async fetch() {
        await helia.libp2p.dial(multiaddr(String(seed['address'])))
        const counter = new ByteCounter()
        for await (const chunk of unixfs(helia).cat(cid)) counter.add(chunk)
        return counter.result()
      },
    }
  },
}
