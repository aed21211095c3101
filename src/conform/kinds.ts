// The kinds implemented so far. Each model family adds one import here that registers its
// handlers with registerKind.
export {};
