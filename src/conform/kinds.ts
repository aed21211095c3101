// The kinds implemented so far. Each model family adds one import here that registers its
// handlers with registerKind.
import './kinds/tokenizer.js';
import './kinds/t5.js';
import './kinds/dit.js';
import './kinds/ar.js';
import './kinds/vlm-text.js';
import './kinds/vlm-model.js';
import './kinds/vlm-prompt-embeds.js';
import './kinds/controlnet.js';
import './kinds/control-maps.js';
import './kinds/wan-vae.js';
import './kinds/checkpoint.js';
import './kinds/guardrail-siglip.js';
import './kinds/guardrail-face.js';
import './kinds/guardrail-aegis.js';
import './kinds/blur-map.js';
import './kinds/depth.js';
import './kinds/ar-decoder.js';
