/**
 * bench:swarm's WebTorrent system: WebTorrent 2 over TCP only. uTP, DHT, trackers, local
 * service discovery, UPnP/NAT-PMP and web seeds are off; peer exchange (ut_pex) stays on, as
 * it is how BitTorrent leechers find each other without a tracker. WebRTC is off too, and
 * more than by option: its polyfill (webrtc-polyfill, over the native node-datachannel,
 * whose binary comes from a download that an offline `npm install --ignore-scripts` never
 * makes) cannot load here, so this module resolves it to an empty stub, which WebTorrent
 * reads as "no WebRTC support". webtorrent is therefore imported dynamically, after the hook.
 * For the same reason package.json's allowScripts denies node-datachannel's install script,
 * and ip-set's (a preinstall that insists on pnpm): either would fail `npm ci`. uint8-util is
 * pinned to 2.2.6 by an override, as 2.3.x is known to crash webtorrent 2.8.5.
 *   - Seed: seeds the file from its path (create-torrent's default piece length), writes the
 *     .torrent file beside it and reports its path and the TCP port.
 *   - Leecher: reads the .torrent file while preparing; on GO adds the torrent with a
 *     download folder of its own and the seed as its one known peer
 *     (`torrent.addPeer('127.0.0.1:port')`), and is done at the torrent's 'done' (every
 *     piece written and checked against its SHA-1); the file is hashed after.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { registerHooks } from 'node:module'
import { join } from 'node:path'
import type WebTorrentClient from 'webtorrent'
import type { Torrent, WebTorrentOptions } from 'webtorrent'
import type { SystemRoles } from './swarm-child.ts'

const WEBRTC_STUB_URL = `data:text/javascript,${encodeURIComponent('export const RTCPeerConnection = undefined; export const RTCSessionDescription = undefined; export const RTCIceCandidate = undefined')}`

const CLIENT_OPTIONS: WebTorrentOptions = { dht: false, tracker: false, lsd: false, natUpnp: false, natPmp: false, utp: false, webSeeds: false }

async function loadWebTorrent(): Promise<typeof WebTorrentClient> {
  registerHooks({
    resolve(specifier, context, next) {
      if (specifier === 'webrtc-polyfill') return { url: WEBRTC_STUB_URL, shortCircuit: true }
      return next(specifier, context)
    },
  })
  return (await import('webtorrent')).default
}

function untilEvent<T>(emitter: Torrent | WebTorrentClient, name: string, ...failures: Array<Torrent | WebTorrentClient>): Promise<T> {
  return new Promise((resolve, reject) => {
    emitter.once(name, resolve)
    for (const failing of [emitter, ...failures]) failing.once('error', reject)
  })
}

export const webTorrentRoles: SystemRoles = {
  async seed(file, workDir) {
    const WebTorrent = await loadWebTorrent()
    const client = new WebTorrent(CLIENT_OPTIONS)
    const seeded = new Promise<Torrent>((resolve, reject) => {
      client.once('error', reject)
      client.seed(file, { announce: [] }, resolve)
    })
    const torrent = await seeded
    const address = client.address()
    if (address === null) throw new Error('the WebTorrent seed does not listen')
    const torrentPath = join(workDir, 'seed.torrent')
    await writeFile(torrentPath, torrent.torrentFile)
    return { torrentPath, address: `127.0.0.1:${address.port}`, pieceBytes: torrent.pieceLength }
  },

  async leecher({ seed, workDir }) {
    const WebTorrent = await loadWebTorrent()
    const client = new WebTorrent(CLIENT_OPTIONS)
    const torrentFile = await readFile(String(seed['torrentPath']))
    return {
      async fetch() {
        const torrent = client.add(torrentFile, { path: workDir, announce: [] })
        const done = untilEvent<void>(torrent, 'done', client)
        if (torrent.infoHash) torrent.addPeer(String(seed['address']))
        else torrent.once('infoHash', () => torrent.addPeer(String(seed['address'])))
        await done
        const [file] = torrent.files
        if (file === undefined || torrent.files.length !== 1) throw new Error(`the torrent holds ${torrent.files.length} files, not one`)
        return { kind: 'file', path: join(workDir, file.path) }
      },
    }
  },
}
