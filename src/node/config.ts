/**
 * `config.json`: the node's settings, with one schema that fills defaults and rejects
 * unknown keys and bad values with a one-line error naming the key. Later issues add
 * their sections here (network, dht, pubsub, swarm, ...).
 */
import { open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { CID_PROFILES } from '../core/content/cid-profile.ts'
import { ShoalError, systemErrorCode } from '../core/errors.ts'
import { HEAP_TRIM_DEFAULTS } from './heap-trimmer.ts'

export const CONFIG_FILE = 'config.json'

const BYTE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
}

/** A byte count given as an integer or as text such as "10GiB" or "500 MB". */
const byteSize = z.union([
  z.number().int().positive(),
  z.string().transform((text, context) => {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text)
    const unit = BYTE_UNITS[(match?.[2] || 'b').toLowerCase()]
    const bytes = match && unit ? Math.floor(Number(match[1]) * unit) : NaN
    if (!Number.isSafeInteger(bytes) || bytes <= 0) {
      context.addIssue({ code: 'custom', message: `expected a size such as 10GiB or 500MB, got '${text}'` })
      return z.NEVER
    }
    return bytes
  }),
])

/** A byte count from a flag, e.g. --max-upload 10MB; `name` names the flag in the error. */
export function parseByteSize(text: string, name: string): number {
  const result = byteSize.safeParse(/^\d+$/.test(text.trim()) ? Number(text) : text)
  if (!result.success) throw new ShoalError('INVALID_ARGUMENT', `${name}: ${result.error.issues[0]!.message}`)
  return result.data
}

const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-f:.]+\]:\d{1,5}$/i, 'expected HOST:PORT such as 127.0.0.1:5080')

/** A multiaddr as text; parsed for real where it is used, this only catches typos early. */
const multiaddrText = z.string().regex(/^(\/[^/\s]+)+$/, 'expected a multiaddr such as /ip4/192.0.2.1/tcp/4001')

export const DEFAULT_LISTEN_ADDRESSES = ['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/4002/ws']

const iceServerUrl = z.string().regex(/^(stun|stuns|turn|turns):[^\s]{1,250}$/, 'expected a STUN or TURN url such as stun:198.51.100.1:3478')

const ConfigSchema = z.strictObject({
  api: z.strictObject({
    address: hostPort.default('127.0.0.1:5080'),
    /** Requests served at once (event streams included); more are answered 503 BUSY. */
    requestsInFlightMax: z.number().int().min(1).max(100_000).default(256),
    /** Of those, reads of content (cat) at once: each holds a block of up to 1 MiB. */
    readsInFlightMax: z.number().int().min(1).max(100_000).default(32),
  }).prefault({}),
  storage: z.strictObject({
    /** null: no quota */
    quotaBytes: byteSize.nullable().default(null),
  }).prefault({}),
  import: z.strictObject({
    cidProfile: z.enum(CID_PROFILES).default('unixfs-v1-2025'),
  }).prefault({}),
  memory: z.strictObject({
    /**
     * The daemon asks V8 to give back the heap pages it keeps once its RSS is this far above
     * what the last such trim left (node/heap-trimmer.ts); null: never.
     */
    heapTrimRssRiseBytes: byteSize.nullable().default(HEAP_TRIM_DEFAULTS.rssRiseBytesMin),
    /** After every major collection, the daemon asks glibc to give back its free pages (malloc_trim). */
    mallocTrim: z.boolean().default(HEAP_TRIM_DEFAULTS.mallocTrim),
  }).prefault({}),
  network: z.strictObject({
    listen: z.array(multiaddrText).default(DEFAULT_LISTEN_ADDRESSES),
    /** Addresses announced to peers instead of the listen addresses; empty: announce those. */
    announce: z.array(multiaddrText).default([]),
    /** Peers dialled at start, each a multiaddr ending in /p2p/<peer id>. */
    bootstrap: z.array(multiaddrText).default([]),
    mdns: z.boolean().default(true),
    /** Connections the node keeps; membership dials until it has this many. */
    degreeTarget: z.number().int().min(0).max(1_000).default(8),
    connections: z.strictObject({
      max: z.number().int().positive().default(300),
      perIpMax: z.number().int().positive().default(32),
      /** Inbound connections accepted per second from one IP address. */
      inboundPerIpPerSecondMax: z.number().positive().default(10),
      /** Streams a peer may open on one connection. */
      streamsPerConnectionMax: z.number().int().positive().default(256),
      /** Inbound connections in their handshake (encryption, muxer), in all and from one IP address. */
      handshakesMax: z.number().int().positive().max(10_000).default(128),
      handshakesPerIpMax: z.number().int().positive().max(10_000).default(8),
    }).prefault({}),
    peerCache: z.strictObject({
      /** Peers remembered for re-dialling at start. */
      max: z.number().int().min(0).default(200),
      /** A peer not seen alive for this long is forgotten. */
      ageMaxHours: z.number().positive().default(7 * 24),
    }).prefault({}),
  }).prefault({}),
  nat: z.strictObject({
    /** AutoNAT v2: peers dial our public addresses back; a confirmed one makes the node public. */
    autonat: z.boolean().default(true),
    /** Circuit relay v2 server: forwards connections for peers behind NATs. */
    relayServer: z.strictObject({
      /** auto: relay while AutoNAT finds this node public; on: always; off: never. */
      mode: z.enum(['auto', 'on', 'off']).default('auto'),
      reservationsMax: z.number().int().min(1).max(100_000).default(128),
      /** Reservations held for peers connecting from one IP address. */
      reservationsPerIpMax: z.number().int().min(1).max(100_000).default(4),
      reservationTtlSeconds: z.number().int().min(60).max(86_400).default(3_600),
      /**
       * A relayed connection is closed after this long or after this many bytes each way; its
       * peers may open another. Hole punching needs little; a transfer between two peers
       * behind symmetric NATs goes through whole.
       */
      connectionSecondsMax: z.number().int().min(1).max(86_400).default(3_600),
      connectionBytesMax: byteSize.default(256 * 2 ** 20),
    }).prefault({}),
    relayClient: z.strictObject({
      /** auto: keep reservations on relays while the node is not public; on: always; off: never. */
      mode: z.enum(['auto', 'on', 'off']).default('auto'),
      /** Relays to hold a reservation on at once. */
      reservations: z.number().int().min(1).max(8).default(2),
    }).prefault({}),
    holePunching: z.strictObject({
      /** Upgrade relayed connections to direct ones with WebRTC (ICE). */
      enabled: z.boolean().default(true),
      /** STUN and TURN servers for ICE; null: libp2p's defaults (public STUN servers). */
      iceServers: z.array(z.strictObject({
        urls: z.union([iceServerUrl, z.array(iceServerUrl).min(1).max(8)]),
        username: z.string().max(256).optional(),
        credential: z.string().max(256).optional(),
      })).max(16).nullable().default(null),
    }).prefault({}),
  }).prefault({}),
  dht: z.strictObject({
    /** libp2p protocol id; /ipfs/kad/1.0.0 joins the public IPFS DHT's wire protocol (for interop). */
    protocol: z.string().regex(/^\/[\x21-\x7e]{1,99}$/, 'expected a protocol id such as /shoal/kad/1.0.0').default('/shoal/kad/1.0.0'),
    /**
     * server: answers DHT requests and is added to peers' routing tables; client: only asks.
     * auto: server while the node is public (AutoNAT confirmed an address, or one is announced).
     */
    mode: z.enum(['auto', 'server', 'client']).default('auto'),
    /** S/Kademlia disjoint paths for provider and value lookups; 1 is a plain lookup. */
    disjointPaths: z.number().int().min(1).max(8).default(1),
    /** Loopback, private and link-local addresses count toward no IP group in the routing table's diversity limits. */
    privateAddressesExempt: z.boolean().default(true),
    ipGroupPerBucketMax: z.number().int().positive().default(2),
    ipGroupPerTableMax: z.number().int().positive().default(3),
    providerRecordsMax: z.number().int().positive().default(100_000),
    valueRecordsMax: z.number().int().positive().default(10_000),
  }).prefault({}),
  pubsub: z.strictObject({
    /** strict-sign: every message is signed by its source and checked; strict-no-sign: anonymous messages only. */
    signaturePolicy: z.enum(['strict-sign', 'strict-no-sign']).default('strict-sign'),
    /**
     * How signed messages are named in IHAVE, IWANT and IDONTWANT. peer-id: the spec's (and
     * go-libp2p's) source peer id + seqno; public-key: js-libp2p's source public key + seqno.
     * Every node of a mesh should use the same, or gossip between them finds nothing in common.
     */
    messageIdFormat: z.enum(['peer-id', 'public-key']).default('peer-id'),
    /** Mesh degree: target, low and high watermarks; and peers gossiped to per heartbeat. */
    D: z.number().int().min(1).max(64).default(6),
    Dlo: z.number().int().min(1).max(64).default(4),
    Dhi: z.number().int().min(1).max(128).default(12),
    Dlazy: z.number().int().min(0).max(128).default(6),
    heartbeatIntervalMs: z.number().int().min(100).max(60_000).default(1_000),
    /** Our own messages go to every subscribed peer, not just the mesh (v1.1). */
    floodPublish: z.boolean().default(true),
    /** v1.2 IDONTWANT for messages over 1 KiB. */
    idontwant: z.boolean().default(true),
    /** Peer scoring (v1.1): misbehaving peers are pruned, ignored, then graylisted. */
    scoring: z.boolean().default(true),
    messageBytesMax: z.number().int().min(1).max(1024 * 1024).default(1024 * 1024),
    /** Topics this node may subscribe to at once. */
    subscriptionsMax: z.number().int().min(1).max(10_000).default(1_000),
    /** Peer ids always forwarded to and never grafted (explicit peering agreements). */
    directPeers: z.array(z.string().min(1).max(128)).max(64).default([]),
  }).refine((pubsub) => pubsub.Dlo <= pubsub.D && pubsub.D <= pubsub.Dhi, {
    message: 'mesh degrees must satisfy Dlo <= D <= Dhi',
  }).prefault({}),
  swarm: z.strictObject({
    /** Rate limits in bytes per second (a number, or text such as "10MB"); null: none. */
    uploadBytesPerSecondMax: byteSize.nullable().default(null),
    downloadBytesPerSecondMax: byteSize.nullable().default(null),
    peerUploadBytesPerSecondMax: byteSize.nullable().default(null),
    peerDownloadBytesPerSecondMax: byteSize.nullable().default(null),
    /** Downloads at once. */
    fetchesMax: z.number().int().min(1).max(1_000).default(32),
    peersPerSessionMax: z.number().int().min(1).max(1_000).default(50),
    /** Tit-for-tat's regular unchoke slots per content (BitTorrent's 4), besides one optimistic slot. */
    unchokeSlots: z.number().int().min(1).max(100).default(4),
    /** How a peer holding a whole content picks whom to serve: round-robin (equal shares) or upload-rate (fastest first). */
    seedUnchoke: z.enum(['round-robin', 'upload-rate']).default('round-robin'),
    /**
     * After a download completes, the node serves it until it has uploaded ratioMax times
     * its size or secondsMax have passed (null: no limit), then stops serving it until restart.
     * Content added or pinned here is always served.
     */
    seed: z.strictObject({
      ratioMax: z.number().positive().nullable().default(null),
      secondsMax: z.number().int().positive().nullable().default(null),
    }).prefault({}),
  }).prefault({}),
})

export type Config = z.output<typeof ConfigSchema>

export function defaultConfig(): Config {
  return ConfigSchema.parse({})
}

/** Validates parsed JSON; `source` names the file or flag in the error. */
export function parseConfig(value: unknown, source: string): Config {
  const result = ConfigSchema.safeParse(value)
  if (result.success) return result.data
  const issue = result.error.issues[0]!
  if (issue.code === 'unrecognized_keys') {
    const key = [...issue.path, issue.keys[0]].join('.')
    throw new ShoalError('INVALID_CONFIG', `${source}: unknown key '${key}'`)
  }
  const key = issue.path.join('.')
  throw new ShoalError('INVALID_CONFIG', `${source}: invalid value for '${key}': ${issue.message}`)
}

export function getConfigValue(config: Config, key: string): unknown {
  let value: unknown = config
  for (const part of key.split('.')) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, part)) {
      throw new ShoalError('INVALID_CONFIG', `unknown config key '${key}'`)
    }
    value = (value as Record<string, unknown>)[part]
  }
  return value
}

/** Sets a leaf key; `text` is read as JSON when it parses as JSON, as a string otherwise. */
export function setConfigValue(config: Config, key: string, text: string): Config {
  const current = getConfigValue(config, key)
  if (typeof current === 'object' && current !== null && !Array.isArray(current)) {
    throw new ShoalError('INVALID_CONFIG', `config key '${key}' is a section; set one of its keys`)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    value = text
  }
  const copy: Record<string, unknown> = structuredClone(config)
  const parts = key.split('.')
  let section = copy
  for (const part of parts.slice(0, -1)) section = section[part] as Record<string, unknown>
  section[parts.at(-1)!] = value
  return parseConfig(copy, 'config')
}

export async function readConfig(repoPath: string): Promise<Config> {
  const path = join(repoPath, CONFIG_FILE)
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') throw new ShoalError('REPO_MISSING', `no config at ${path}; run: shoal init`)
    throw error
  }
  return parseConfigFile(bytes, path)
}

/** Far more than any config needs (the default is about 3 KB). */
export const CONFIG_FILE_BYTES_MAX = 256 * 1024

/** A config file's bytes (UTF-8 JSON); `source` names it in the error. */
export function parseConfigFile(bytes: Uint8Array, source: string): Config {
  if (bytes.byteLength > CONFIG_FILE_BYTES_MAX) throw new ShoalError('INVALID_CONFIG', `${source}: ${bytes.byteLength} bytes is more than ${CONFIG_FILE_BYTES_MAX}`)
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder().decode(bytes))
  } catch (error) {
    throw new ShoalError('INVALID_CONFIG', `${source}: not valid JSON (${(error as Error).message})`)
  }
  return parseConfig(json, source)
}

/** Replaces config.json atomically: a crash leaves the old file or the new one. */
export async function writeConfig(repoPath: string, config: Config): Promise<void> {
  const path = join(repoPath, CONFIG_FILE)
  const temp = `${path}.${process.pid}.tmp`
  const handle = await open(temp, 'w', 0o644)
  try {
    await handle.writeFile(`${JSON.stringify(config, null, 2)}\n`)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temp, path)
}
