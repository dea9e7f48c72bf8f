/**
 * The part of WebTorrent 2's API that bench:swarm uses (the package ships no types, and
 * @types/webtorrent describes version 1).
 */
declare module 'webtorrent' {
  import { EventEmitter } from 'node:events'
  import type { AddressInfo } from 'node:net'

  export interface WebTorrentOptions {
    dht?: boolean
    tracker?: boolean
    lsd?: boolean
    utPex?: boolean
    natUpnp?: boolean
    natPmp?: boolean
    utp?: boolean
    webSeeds?: boolean
    torrentPort?: number
    maxConns?: number
  }

  export interface TorrentOptions {
    path?: string
    announce?: string[]
    name?: string
    private?: boolean
  }

  export interface TorrentFile {
    name: string
    path: string
    length: number
  }

  export class Torrent extends EventEmitter {
    infoHash: string
    torrentFile: Uint8Array
    pieceLength: number
    length: number
    files: TorrentFile[]
    numPeers: number
    addPeer(peer: string): boolean
  }

  export default class WebTorrent extends EventEmitter {
    static readonly WEBRTC_SUPPORT: boolean
    static readonly UTP_SUPPORT: boolean
    constructor(options?: WebTorrentOptions)
    add(torrentId: Uint8Array | string, options?: TorrentOptions, onTorrent?: (torrent: Torrent) => void): Torrent
    seed(input: string, options?: TorrentOptions, onSeed?: (torrent: Torrent) => void): Torrent
    address(): AddressInfo | null
    destroy(callback?: (error?: Error) => void): void
  }
}
