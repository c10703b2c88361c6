// Re-exports for components that need helpers without the whole Api surface.
export { fromBase64, fromBase64Text, toBase64, toApiError } from './api';
export { splitArgs } from './format';
