// The Aegis text side of the prompt guard (cosmos-predict1 auxiliary/guardrail/aegis): the
// moderation prompt LlamaGuard answers, its safety categories, and how the answer is read.
// Spec guardrail.md "Aegis". The strings are upstream's data, kept byte for byte: the template's
// continuation lines carry the 8-space indentation of the Python source they came from, and the
// category list skips O9 although the template numbers them up to O12.

export interface AegisCategory {
  /** the short name the block message starts with */
  category: string;
  blockedReason: string;
  /** the policy text put into the prompt, ending with a newline */
  instruction: string;
}

/** The categories in upstream's order (11 entries: O1..O8, O10, O11, O12). */
export const AEGIS_UNSAFE_CATEGORIES: readonly AegisCategory[] = [
  {
    category: "violence",
    blockedReason: "This prompt is blocked due to the presence of violent content.",
    instruction: "O1: Violence.\nShould not\n- Help people plan or engage in violence.\n- Encourage people to engage in violence.\n- Contain unpleasant vivid violent imagery or violent description that arouses discomfort in the reader.\nCan\n- Provide information on violence.\n- Discuss the topics of violence, and can discuss historical events involving violence.\n",
  },
  {
    category: "sexual",
    blockedReason: "This prompt is blocked due to the presence of sexual content.",
    instruction: "O2: Sexual.\nShould not\n- Engage in sexually explicit (i.e., erotic) conversations and should not encourage people to engage in sexual activities.\n- Engage or encourage sexual activity that is considered illegal.\nCan\n- Discuss topics related to sexuality and sexual education.\n- Provide general information regarding sexual activities.\n- Provide guidance on topics related to sexual health.\n",
  },
  {
    category: "criminal_planning",
    blockedReason: "This prompt is blocked due to the presence of criminal planning/confessions content.",
    instruction: "O3: Criminal Planning/Confessions.\nShould not\n- Help people plan or engage in criminal activities like theft, kidnapping, or financial crimes, especially when the person indicates that they may act on the information provided to them.\n- Encourage people to engage in criminal activities or condone criminal behavior.\n- Have a confession of crime that was committed or will be committed in future.\nCan\n- Help people understand how crimes are committed, provided that the response is not so detailed that it could be used to provide a roadmap for future crimes.\n- Help people understand how systems work that are used to prevent crimes, provided those descriptions do not provide detailed information on how to defeat those systems.\n",
  },
  {
    category: "weapons",
    blockedReason: "This prompt is blocked due to the presence of weapons content.",
    instruction: "O4: Guns and Illegal Weapons.\nShould not\n- Assist in the planning or execution of firearm or illegal weapons crimes, especially when the person indicates that they may act on the information provided to them.\n- Encourage people to engage in firearm or illegal weapons crimes or condone such behavior.\n- Assist or encourage people to execute or own other illegal weapons for example biological agents, or chemical weapons, including instructions on how to create or use them.\nCan\n- Discuss firearms and the arguments for and against firearm ownership.\n",
  },
  {
    category: "substance_abuse",
    blockedReason: "This prompt is blocked due to the presence of substance abuse content.",
    instruction: "O5: Controlled/Regulated Substances.\nShould not\n- Encourage or assist people in the trafficking, consumption, or use of regulated or controlled substances, including but not limited to illegal drugs, tobacco, alcohol, and cannabis.\n- Assist or encourage people to create such substances when it is illegal to do so.\nCan\n- Discuss the use of regulated or controlled substances, and can provide general information on those substances (ex: what their chemical composition is and what their effects are).\n- Provide information on how those substances are manufactured, provided that the information is not so detailed as to provide step-by-step instructions for their creation.\n",
  },
  {
    category: "suicide",
    blockedReason: "This prompt is blocked due to the presence of suicide and self harm content.",
    instruction: "O6: Suicide and Self Harm.\nShould not\n- Encourage people to harm themselves.\n- Romanticize or condone self-harm or suicide.\n- Provide information regarding the methods of suicide or self-harm.\n- Provide any information or advice, other than information regarding appropriate health resources, to people who express or imply that they wish to harm themselves.\n- Contain confessions or intent of self harm\nCan\n- Provide general information regarding self-harm and suicide (ex: statistics, the mental health challenges faced by those who take these actions).\nShould\n- Provide information regarding appropriate health resources to people who imply or express the desire to harm themselves.\n",
  },
  {
    category: "csam",
    blockedReason: "This prompt contains material related to Child Sexual Abuse",
    instruction: "O7: Sexual (minor).\nShould not\n- Assist, engage or encourage intention to engage in sexual activity with an underage/minor.\n- Discuss or plan sexual acts, sharing of media of sexual nature, personal information or intention to meet in person for sexual activity with a minor.\n- Should not include discussion where private information is shared with underage minors for purposes of acting on them and taking actions that are sexual in nature including meeting or sharing media.\n- Should not discuss child abuse or engage, encourage, assist in sexual grooming/trafficking of children.\nCan\n- Provide information about sex education for use in schools.\n",
  },
  {
    category: "hatred",
    blockedReason: "This prompt is blocked due to the presence of hate speech content.",
    instruction: "O8: Hate/Identity Hate.\nShould not\n- Express hateful, derogatory, or demeaning sentiments against people based on sensitive personal characteristics like their\nrace, color, ethnicity, religion, national origin, sexual orientation, gender, gender identity, or disability or caste.\n- Encourage discrimination against people based on those characteristics and should not use slurs or create insults based on those characteristics.\n- Should not discuss prejudice towards a group classified as protected according to the law of Germany, UK, USA or any other country.\n- Should not contain slurs.\n- Should not contain text that is distasteful, offensive, or hateful that causes others to feel grief, anger, or fear.\nCan\n- Provide information on discrimination.\n- Discuss the topics of discrimination, and can discuss historical events involving discrimination.\n- Discuss neutral statements referring to group identity and  contextualized hate speech (that talks about hate but does not incite hate).\n",
  },
  {
    category: "harassment",
    blockedReason: "This prompt is blocked due to the presence of harassment content.",
    instruction: "O10: Harassment.\nShould not\n- Have content that may be used to torment or annoy individuals in real life, or make harassment more likely to occur.\n- Engage in harassment, misconduct and unlawful discrimination\n- Single out an individual or marginalization and/or retaliation based on protected characteristics like Race, Color, Gender, Sex,\nSexual orientation, Gender identity, and gender expression, National origin, Ethnicity, Disability (including being regarded as disabled),\nReligion, Age (40+), Pregnancy (including pregnancy, childbirth or related medical conditions), Genetic information, Military or veteran status, Citizenship status, Political activity, or affiliation,\n- Taking or requesting statutorily protected leave Body characteristics.\n- Promise to give a benefit, or a threat to retaliate or take an adverse action based on a response to harassment and misconduct.\n- Bullying.\n- Being derogatory and humiliating toward an individual but not necessarily protected characteristics under law.\n- Making rude or insulting comments, demeaning, and objectifying terms toward an individual.\nCan\n- Discuss negative impacts of harassment and bullying based on protected characteristics like race, color, gender, sex, nationality, within a contextualized setting.\n- Provide information on protected characteristics or refers, cites material that describes what protected characteristics are.\n- Provide information or refer or cite material that informs what harassment is.\n",
  },
  {
    category: "threat",
    blockedReason: "This prompt is blocked due to the presence of threat content.",
    instruction: "O11: Threat.\nShould not\n- Discuss a communication of intent to inflict harm or loss on another person.\n- Should not contain discussion of intention of intimidation which  is a tactic used between conflicting parties to make the other timid or psychologically insecure for coercion or control.\n- Should not contain intention of knowingly putting another person in fear of bodily injury.\n- Should not assist or plan injury, physical or mental damage, act or instance of injury, or material  or any kind of loss to a person.\n- Should not contain threats that are forbidden by law as intent to obtain a monetary advantage or to compel a person to act against their will.\nCan\n- Provide information about threat is and the meaning of threat.\n",
  },
  {
    category: "profanity",
    blockedReason: "This prompt is blocked due to the presence of profanity content.",
    instruction: "O12: Profanity.\nShould not\n- Contain swear words, curse words, or other obscene or profane language\n- This includes offensive words used without any intention to act on them or without any explicit targeted recipient\n",
  },
];

const INDENT = ' '.repeat(8);

/** The prompt LlamaGuard + the Aegis adapter is asked to classify, for one user prompt. */
export function aegisModerationPrompt(userPrompt: string): string {
  const policy = AEGIS_UNSAFE_CATEGORIES.map((c) => c.instruction).join('');
  return (
    "[INST] Task: Check if there is unsafe content in 'User' messages in conversations according our safety policy with the below categories.\n\n" +
    `${INDENT}<BEGIN UNSAFE CONTENT CATEGORIES>\n${INDENT}${policy}\n${INDENT}<END UNSAFE CONTENT CATEGORIES>\n\n` +
    `${INDENT}<BEGIN CONVERSATION>\n\n${INDENT}` +
    `User: ${userPrompt}\n\n` +
    `<END CONVERSATION>\n\n${INDENT}Provide your safety assessment for User in the above conversation:\n` +
    `${INDENT}- First line must read 'safe' or 'unsafe'.\n` +
    `${INDENT}- If unsafe, a second line must include a comma-separated list of violated categories. [/INST]`
  );
}

/** What Aegis answers when it cannot name the category. */
export const AEGIS_DEFAULT_BLOCK_MESSAGE = 'Prompt blocked by Aegis.';
/** What upstream returns (as SAFE) when running the model raised. */
export const AEGIS_ERROR_MESSAGE = 'Unexpected error occurred when running Aegis guardrail.';

// Characters Python's str.isspace() accepts, which int() strips from both ends.
const PY_SPACE = new Set([...'\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000'].concat(
  Array.from({ length: 11 }, (_, i) => String.fromCharCode(0x2000 + i)),
));
const DECIMAL = /^\p{Nd}$/u;

/** The value of one Unicode decimal digit: Nd digits come in runs of ten starting at their zero. */
function digitValue(ch: string): number {
  const cp = ch.codePointAt(0)!;
  let start = cp;
  while (start > 0 && DECIMAL.test(String.fromCodePoint(start - 1))) start--;
  return (cp - start) % 10;
}

/**
 * Python's int(text) for base 10, or null where it raises: surrounding whitespace, one sign,
 * any Unicode decimal digits, single underscores between digits.
 */
export function pythonInt(text: string): number | null {
  const chars = [...text];
  let a = 0;
  let b = chars.length;
  while (a < b && PY_SPACE.has(chars[a])) a++;
  while (b > a && PY_SPACE.has(chars[b - 1])) b--;
  let sign = 1;
  if (a < b && (chars[a] === '+' || chars[a] === '-')) {
    if (chars[a] === '-') sign = -1;
    a++;
  }
  if (a === b) return null;
  let value = 0;
  let prevDigit = false;
  for (let i = a; i < b; i++) {
    const ch = chars[i];
    if (ch === '_') {
      if (!prevDigit || i === b - 1) return null;
      prevDigit = false;
      continue;
    }
    if (!DECIMAL.test(ch)) return null;
    value = value * 10 + digitValue(ch);
    prevDigit = true;
  }
  return sign * value;
}

/**
 * The block message for an unsafe answer: its second line, with leading 'O's removed, read as a
 * category number (1-based into the 11-entry list, so O10 names the 10th entry, "threat", and O12
 * falls outside); anything else gives the default message.
 */
export function aegisBlockMessage(answer: string): string {
  const lines = answer.split('\n');
  if (lines.length < 2) return AEGIS_DEFAULT_BLOCK_MESSAGE;
  const n = pythonInt(lines[1].replace(/^O+/, ''));
  if (n === null) return AEGIS_DEFAULT_BLOCK_MESSAGE;
  const c = AEGIS_UNSAFE_CATEGORIES[n - 1];
  return n - 1 >= 0 && c ? `${c.category}: ${c.blockedReason}` : AEGIS_DEFAULT_BLOCK_MESSAGE;
}

/**
 * Upstream's verdict on the decoded answer: unsafe iff "unsafe" occurs anywhere in it, lower-cased
 * (so "not unsafe" is unsafe, and "safe\nO2" is safe).
 */
export function parseAegisAnswer(answer: string): { safe: boolean; message: string } {
  if (!answer.toLowerCase().includes('unsafe')) return { safe: true, message: '' };
  return { safe: false, message: aegisBlockMessage(answer) };
}
