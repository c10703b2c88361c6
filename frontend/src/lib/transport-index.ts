// Everything the transport tests import, in one place.
export { Api } from './api';
export { WsTransport, WailsTransport, ApiError, type WSConstructor } from './transport';
