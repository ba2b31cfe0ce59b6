export * from './admin-server.js';
export * from './cidr.js';
export * from './client-command.js';
export * from './client-exit.js';
export * from './config.js';
export * from './config-types.js';
export * from './connect.js';
export * from './connection-tracker.js';
export {
  DATAGRAM_SLOT_SIZE,
  DatagramBatch,
  datagramBatchSupport,
  datagramSocketFd,
  takeOverDatagramSocket,
} from './datagram-batch.js';
export * from './endpoint.js';
export * from './errno.js';
export * from './errors.js';
export * from './exact-io.js';
export * from './keepalive.js';
export * from './listen.js';
export * from './logger.js';
export { formatManPage } from './man-page.js';
export * from './metrics.js';
export * from './proxy-protocol.js';
export * from './reflection-guard.js';
export * from './reuse-port.js';
export * from './rlimit.js';
export * from './serve-options.js';
export * from './service.js';
export {
  type ActivatedSocket,
  activatedSocket,
  type ListenFd,
  listenFds,
  SD_LISTEN_FDS_START,
} from './socket-activation.js';
export {
  getSocketFd,
  IPPROTO_TCP,
  readSocketOption,
  SO_ERROR,
  SO_KEEPALIVE,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOL_SOCKET,
  type SocketLike,
  TCP_KEEPCNT,
  TCP_KEEPIDLE,
  TCP_KEEPINTVL,
  TCP_NODELAY,
  TCP_USER_TIMEOUT,
} from './sockopt.js';
export * from './udp-bind.js';
export * from './user-timeout.js';
