/**
 * The functions /query lets a statement call: an allow-list by family, names as chDB 26.7's `system.functions` has
 * them (query-functions.integration.test.ts checks each one still exists). A name not listed is refused, so a function
 * a new ClickHouse adds is refused until someone reads what it does and lists it.
 *
 * Left out on purpose, beyond the families not listed (files, dictionaries, models, geo, introspection, server state):
 * - the quadratic distances (editDistance, damerauLevenshteinDistance, jaro*, arrayLevenshteinDistance*,
 *   arraySimilarity, multiFuzzyMatch*): on constant arguments ClickHouse computes them while planning, where neither
 *   max_execution_time nor a cancel reaches, so one statement could hold a reader for minutes;
 * - nullIn, notNullIn, globalNullIn, globalNotNullIn and the *IgnoreSet forms: they build a set from any table
 *   named as an argument;
 * - getSetting, getServerSetting, hasColumnInTable, hostName, currentUser, file, url, catboostEvaluate, dictHas, …
 */

const FAMILIES = {
  /** Aggregate and window functions (their -If, -Merge, … combinators are read off the name). */
  aggregate: `
  analysisOfVariance anova any any_respect_nulls any_value any_value_respect_nulls anyHeavy anyLast
  anyLast_respect_nulls anyLastRespectNulls anyRespectNulls anyValueRespectNulls approx_top_count approx_top_k
  approx_top_sum argAndMax argAndMin argMax argMin array_agg avg avgWeighted BIT_AND BIT_OR BIT_XOR boundingRatio
  categoricalInformationValue contingency corr corrMatrix corrStable count COVAR_POP COVAR_SAMP covarPop
  covarPopMatrix covarPopStable covarSamp covarSampMatrix covarSampStable cramersV cramersVBiasCorrected cume_dist
  deltaSum deltaSumTimestamp dense_rank denseRank distinctDynamicTypes distinctJSONPaths distinctJSONPathsAndTypes
  entropy estimateCompressionRatio exponentialMovingAverage exponentialTimeDecayedAvg exponentialTimeDecayedCount
  exponentialTimeDecayedMax exponentialTimeDecayedSum first_value first_value_respect_nulls firstValueRespectNulls
  group_concat groupArray groupArrayInsertAt groupArrayIntersect groupArrayLast groupArrayMovingAvg
  groupArrayMovingSum groupArraySample groupArraySorted groupBitAnd groupBitmap groupBitmapAnd groupBitmapOr
  groupBitmapXor groupBitOr groupBitXor groupConcat groupFormat groupNumericIndexedVector groupUniqArray histogram
  intervalLengthSum kolmogorovSmirnovTest kurtPop kurtSamp lag lagInFrame largestTriangleThreeBuckets last_value
  last_value_respect_nulls lastValueRespectNulls lead leadInFrame lttb mannWhitneyUTest max max_by
  maxIntersections maxIntersectionsPosition maxMappedArrays meanZTest median medianBFloat16 medianBFloat16Weighted
  medianDD medianDeterministic medianExact medianExactHigh medianExactLow medianExactWeighted
  medianExactWeightedInterpolated medianGK medianInterpolatedWeighted medianTDigest medianTDigestWeighted
  medianTiming medianTimingWeighted min min_by minMappedArrays nonNegativeDerivative nothing nothingNull
  nothingUInt64 nth_value ntile percent_rank percentRank quantile quantileBFloat16 quantileBFloat16Weighted
  quantileDD quantileDeterministic quantileExact quantileExactExclusive quantileExactHigh quantileExactInclusive
  quantileExactLow quantileExactWeighted quantileExactWeightedInterpolated quantileGK quantileInterpolatedWeighted
  quantilePrometheusHistogram quantiles quantilesBFloat16 quantilesBFloat16Weighted quantilesDD
  quantilesDeterministic quantilesExact quantilesExactExclusive quantilesExactHigh quantilesExactInclusive
  quantilesExactLow quantilesExactWeighted quantilesExactWeightedInterpolated quantilesGK
  quantilesInterpolatedWeighted quantilesPrometheusHistogram quantilesTDigest quantilesTDigestWeighted
  quantilesTiming quantilesTimingWeighted quantileTDigest quantileTDigestWeighted quantileTiming
  quantileTimingWeighted rank rankCorr retention row_number sequenceCount sequenceMatch sequenceMatchEvents
  sequenceNextNode simpleLinearRegression singleValueOrNull skewPop skewSamp sparkbar sparkBar STD STDDEV
  STDDEV_POP STDDEV_SAMP stddevPop stddevPopStable stddevSamp stddevSampStable string_agg studentTTest
  studentTTestOneSample sum sumCount sumKahan sumMapFiltered sumMapFilteredWithOverflow sumMappedArrays
  sumMapWithOverflow sumWithOverflow theilsU timeSeriesChangesToGrid timeSeriesDeltaToGrid timeSeriesDerivToGrid
  timeSeriesGroupArray timeSeriesIncreaseToGrid timeSeriesInstantDeltaToGrid timeSeriesInstantRateToGrid
  timeSeriesLastToGrid timeSeriesLastTwoSamples timeSeriesPredictLinearToGrid timeSeriesRateToGrid
  timeSeriesResampleToGridWithStaleness timeSeriesResetsToGrid topK topKWeighted uniq uniqCombined uniqCombined64
  uniqExact uniqHLL12 uniqUpTo VAR_POP VAR_SAMP varPop varPopStable varSamp varSampStable welchTTest windowFunnel
`,
  /** Arithmetic, comparison, logic, conditionals, NULL handling, rounding, maths, bits. */
  arithmeticAndLogic: `
  abs acos acosh and asin asinh assumeNotNull atan atan2 atanh avg2 bitAnd bitCount bitHammingDistance bitNot
  bitOr bitRotateLeft bitRotateRight bitShiftLeft bitShiftRight bitSlice bitTest bitTestAll bitTestAny bitXor
  byteSwap caseWithoutExpr caseWithoutExpression cbrt ceil ceiling clamp coalesce cos cosh degrees divide
  divideDecimal divideOrNull e equals erf erfc exp exp10 exp2 factorial firstNonDefault floor gcd globalIn
  globalNotIn greater greaterOrEquals greatest hypot if ifNotFinite ifNull in intDiv intDivOrNull intDivOrZero
  intExp10 intExp2 isDistinctFrom isFinite isInfinite isNaN isNotDistinctFrom isNotNull isNull isNullable isPrime
  isProbablePrime isZeroOrNull lcm least less lessOrEquals lgamma ln log log10 log1p log2 max2 midpoint min2 minus
  mod modOrNull modulo moduloLegacy moduloOrNull moduloOrZero multiIf multiply multiplyDecimal negate not
  notEquals notIn nullIf or pi plus pmod pmodOrNull positive_modulo positive_modulo_or_null positiveModulo
  positiveModuloOrNull pow power proportionsZTest radians round roundAge roundBankers roundDown roundDuration
  roundToExp2 sigmoid sign sin sinh sqr sqrt tan tanh tgamma toNullable trunc truncate width_bucket widthBucket
  xor
`,
  /** Dates, times, intervals, time windows. */
  dateTime: `
  addDate addDays addHours addInterval addMicroseconds addMilliseconds addMinutes addMonths addNanoseconds
  addQuarters addSeconds addTupleOfIntervals addWeeks addYears age changeDay changeHour changeMinute changeMonth
  changeSecond changeYear curdate current_date current_timestamp date_bin date_diff DATE_DIFF DATE_FORMAT
  DATE_TRUNC dateDiff dateName dateTrunc DAY DAYOFMONTH DAYOFWEEK DAYOFYEAR formatDateTime
  formatDateTimeInJodaSyntax FROM_DAYS FROM_UNIXTIME from_utc_timestamp fromDaysSinceYearZero
  fromDaysSinceYearZero32 fromModifiedJulianDay fromModifiedJulianDayOrNull fromUnixTimestamp
  fromUnixTimestampInJodaSyntax fromUTCTimestamp hop hopEnd hopStart HOUR LAST_DAY localtime localtimestamp
  makeDate makeDate32 makeDateTime makeDateTime64 MICROSECOND MILLISECOND MINUTE MONTH monthName NANOSECOND now
  now64 nowInBlock nowInBlock64 QUARTER SECOND subDate subtractDays subtractHours subtractInterval
  subtractMicroseconds subtractMilliseconds subtractMinutes subtractMonths subtractNanoseconds subtractQuarters
  subtractSeconds subtractTupleOfIntervals subtractWeeks subtractYears time_bucket timeDiff timeSlot timeSlots
  timestamp timestamp_diff TIMESTAMP_DIFF timestampDiff timezone timeZone timezoneOf timeZoneOf timezoneOffset
  timeZoneOffset TO_DAYS to_utc_timestamp today toDayOfMonth toDayOfWeek toDayOfYear toDaysInMonth
  toDaysSinceYearZero toHour toISOWeek toISOYear toLastDayOfMonth toLastDayOfWeek toMicrosecond toMillisecond
  toMinute toModifiedJulianDay toModifiedJulianDayOrNull toMonday toMonth toMonthNumSinceEpoch toNanosecond
  toQuarter toRelativeDayNum toRelativeHourNum toRelativeMinuteNum toRelativeMonthNum toRelativeQuarterNum
  toRelativeSecondNum toRelativeWeekNum toRelativeYearNum toSecond toStartOfDay toStartOfFifteenMinutes
  toStartOfFiveMinute toStartOfFiveMinutes toStartOfHour toStartOfInterval toStartOfISOYear toStartOfMicrosecond
  toStartOfMillisecond toStartOfMinute toStartOfMonth toStartOfNanosecond toStartOfQuarter toStartOfSecond
  toStartOfTenMinutes toStartOfWeek toStartOfYear toTimeWithFixedDate toTimezone toTimeZone toUnixTimestamp
  toUTCTimestamp toWeek toYear toYearNumSinceEpoch toYearWeek toYYYYMM toYYYYMMDD toYYYYMMDDhhmmss tumble
  tumbleEnd tumbleStart UTC_timestamp UTCTimestamp week windowID YEAR yearweek yesterday YYYYMMDDhhmmssToDateTime
  YYYYMMDDhhmmssToDateTime64 YYYYMMDDToDate YYYYMMDDToDate32
`,
  /** Strings: search, split, replace, encodings, URLs, IP addresses, UUIDs, hashes. */
  string: `
  alphaTokens appendTrailingCharIfAbsent array_to_string arrayStringConcat ascii base32Decode base32Encode
  base58Decode base58Encode base64Decode base64Encode base64URLDecode base64URLEncode basename bin bitmaskToArray
  bitmaskToList bitPositionsToArray byteHammingDistance byteSlice caseFoldUTF8 char CHAR_LENGTH CHARACTER_LENGTH
  cityHash64 compareSubstrings concat concat_ws concatAssumeInjective concatWithSeparator
  concatWithSeparatorAssumeInjective conv convertCharset countMatches countMatchesCaseInsensitive countSubstrings
  countSubstringsCaseInsensitive countSubstringsCaseInsensitiveUTF8 CRC32 CRC32IEEE CRC64 cutFragment cutIPv6
  cutQueryString cutQueryStringAndFragment cutToFirstSignificantSubdomain cutToFirstSignificantSubdomainCustom
  cutToFirstSignificantSubdomainCustomRFC cutToFirstSignificantSubdomainCustomWithWWW
  cutToFirstSignificantSubdomainCustomWithWWWRFC cutToFirstSignificantSubdomainRFC
  cutToFirstSignificantSubdomainWithWWW cutToFirstSignificantSubdomainWithWWWRFC cutURLParameter cutWWW
  dateTime64ToSnowflakeID dateTimeToSnowflakeID dateTimeToUUIDv7 decodeHTMLComponent decodeURLComponent
  decodeURLFormComponent decodeXMLComponent domain domainRFC domainWithoutWWW domainWithoutWWWRFC
  encodeURLComponent encodeURLFormComponent encodeXMLComponent endsWith endsWithCaseInsensitive
  endsWithCaseInsensitiveUTF8 endsWithUTF8 extract extractAll extractAllGroups extractAllGroupsHorizontal
  extractAllGroupsVertical extractGroups extractTextFromHTML extractURLParameter extractURLParameterNames
  extractURLParameters farmFingerprint64 farmHash64 firstLine firstSignificantSubdomain
  firstSignificantSubdomainCustom firstSignificantSubdomainCustomRFC firstSignificantSubdomainRFC format fragment
  FROM_BASE64 gccMurmurHash generateSnowflakeID generateUUIDv4 generateUUIDv7 halfMD5 hasAllToken hasAllTokens
  hasAnyToken hasAnyTokens hasPhrase hasSubsequence hasSubsequenceCaseInsensitive
  hasSubsequenceCaseInsensitiveUTF8 hasSubsequenceUTF8 hasToken hasTokenCaseInsensitive
  hasTokenCaseInsensitiveOrNull hasTokenOrNull hex highlight hilbertDecode hilbertEncode hiveHash icebergHash
  ilike INET_ATON INET_NTOA INET6_ATON INET6_NTOA initcap initcapUTF8 instr intHash32 intHash64 IPv4CIDRToRange
  IPv4NumToString IPv4NumToStringClassC IPv4StringToNum IPv4StringToNumOrDefault IPv4StringToNumOrNull IPv4ToIPv6
  IPv6CIDRToRange IPv6NumToString IPv6StringToNum IPv6StringToNumOrDefault IPv6StringToNumOrNull isASCII
  isIPAddressInRange isIPv4String isIPv6String isValidASCII isValidUTF8 javaHash javaHashUTF16LE
  jumpConsistentHash kafkaMurmurHash keccak256 kostikConsistentHash lcase left leftPad leftPadUTF8 leftUTF8
  lengthUTF8 like locate lower lowerUTF8 lpad ltrim match matchPhrase MD4 MD5 metroHash64 mid mismatches
  mortonDecode mortonEncode multiMatchAllIndices multiMatchAny multiMatchAnyIndex multiSearchAllPositions
  multiSearchAllPositionsCaseInsensitive multiSearchAllPositionsCaseInsensitiveUTF8 multiSearchAllPositionsUTF8
  multiSearchAny multiSearchAnyCaseInsensitive multiSearchAnyCaseInsensitiveUTF8 multiSearchAnyUTF8
  multiSearchFirstIndex multiSearchFirstIndexCaseInsensitive multiSearchFirstIndexCaseInsensitiveUTF8
  multiSearchFirstIndexUTF8 multiSearchFirstPosition multiSearchFirstPositionCaseInsensitive
  multiSearchFirstPositionCaseInsensitiveUTF8 multiSearchFirstPositionUTF8 murmurHash2_32 murmurHash2_64
  murmurHash3_128 murmurHash3_32 murmurHash3_64 naiveBayesNgrams NATURAL_SORT_KEY naturalSortKey netloc
  ngramDistance ngramDistanceCaseInsensitive ngramDistanceCaseInsensitiveUTF8 ngramDistanceUTF8 ngramMinHash
  ngramMinHashArg ngramMinHashArgCaseInsensitive ngramMinHashArgCaseInsensitiveUTF8 ngramMinHashArgUTF8
  ngramMinHashCaseInsensitive ngramMinHashCaseInsensitiveUTF8 ngramMinHashUTF8 ngrams ngramSearch
  ngramSearchCaseInsensitive ngramSearchCaseInsensitiveUTF8 ngramSearchUTF8 ngramSimHash
  ngramSimHashCaseInsensitive ngramSimHashCaseInsensitiveUTF8 ngramSimHashUTF8 normalizeUTF8NFC normalizeUTF8NFD
  normalizeUTF8NFKC normalizeUTF8NFKCCasefold normalizeUTF8NFKD notILike notLike overlay overlayUTF8 path pathFull
  port portRFC position positionCaseInsensitive positionCaseInsensitiveUTF8 positionUTF8 printf protocol
  queryString queryStringAndFragment REGEXP_EXTRACT regexp_instr REGEXP_MATCHES REGEXP_REPLACE REGEXP_SUBSTR
  regexpExtract regexpInstr regexpPosition regexpQuoteMeta removeAccentsUTF8 removeDiacriticsUTF8 repeat replace
  replaceAll replaceOne replaceRegexpAll replaceRegexpOne reverseBySeparator reverseUTF8 right rightPad
  rightPadUTF8 rightUTF8 RIPEMD160 rpad rtrim SHA1 SHA224 SHA256 SHA384 SHA512 SHA512_256 sipHash128
  sipHash128Keyed sipHash128Reference sipHash128ReferenceKeyed sipHash64 sipHash64Keyed snowflakeIDToDateTime
  snowflakeIDToDateTime64 soundex space sparseGrams sparseGramsHashes sparseGramsHashesUTF8 sparseGramsUTF8
  splitByAlpha splitByChar splitByNonAlpha splitByRegexp splitByString splitByWhitespace sqid sqidDecode
  sqidEncode startsWith startsWithCaseInsensitive startsWithCaseInsensitiveUTF8 startsWithUTF8 stringBytesEntropy
  stringBytesUniq stringJaccardIndex stringJaccardIndexUTF8 substr substring SUBSTRING_INDEX substringIndex
  substringIndexUTF8 substringUTF8 TO_BASE64 toIPv4 toIPv4OrDefault toIPv4OrNull toIPv4OrZero toIPv6
  toIPv6OrDefault toIPv6OrNull toIPv6OrZero tokens tokensForLikePattern topLevelDomain topLevelDomainRFC
  toUUIDOrDefault toUUIDOrNull toValidUTF8 translate translateUTF8 trim trimBoth trimLeft trimRight
  tryBase32Decode tryBase58Decode tryBase64Decode tryBase64URLDecode ucase unbin unhex upper upperUTF8 URLHash
  URLHierarchy URLPathHierarchy UUIDNumToString UUIDStringToNum UUIDToNum UUIDv7ToDateTime wordShingleMinHash
  wordShingleMinHashArg wordShingleMinHashArgCaseInsensitive wordShingleMinHashArgCaseInsensitiveUTF8
  wordShingleMinHashArgUTF8 wordShingleMinHashCaseInsensitive wordShingleMinHashCaseInsensitiveUTF8
  wordShingleMinHashUTF8 wordShingleSimHash wordShingleSimHashCaseInsensitive
  wordShingleSimHashCaseInsensitiveUTF8 wordShingleSimHashUTF8 wyHash64 xxh3 xxh3_128 xxHash32 xxHash64
  xxHash64Spark yandexConsistentHash
`,
  /** Arrays, tuples, maps, JSON. */
  array: `
  array array_remove arrayAll arrayAUC arrayAUCPR arrayAutocorrelation arrayAvg arrayBottomK arrayCompact
  arrayConcat arrayCount arrayCumSum arrayCumSumNonNegative arrayDifference arrayDistinct arrayDotProduct
  arrayElement arrayElementOrNull arrayEnumerate arrayEnumerateDense arrayEnumerateDenseRanked arrayEnumerateUniq
  arrayEnumerateUniqRanked arrayExcept arrayExists arrayFill arrayFilter arrayFirst arrayFirstIndex
  arrayFirstOrNull arrayFlatten arrayFold arrayIntersect arrayJaccardIndex arrayJoin arrayLast arrayLastIndex
  arrayLastOrNull arrayMap arrayMax arrayMin arrayNormalizedGini arrayPartialReverseSort arrayPartialShuffle
  arrayPartialSort arrayPopBack arrayPopFront arrayPRAUC arrayProduct arrayPushBack arrayPushFront
  arrayRandomSample arrayReduce arrayReduceInRanges arrayRemove arrayResize arrayReverse arrayReverseFill
  arrayReverseSort arrayReverseSplit arrayROCAUC arrayRotateLeft arrayRotateRight arrayShiftLeft arrayShiftRight
  arrayShingles arrayShuffle arraySlice arraySort arraySplit arraySum arraySymmetricDifference arrayTopK
  arrayTranspose arrayUnion arrayUniq arrayWithConstant arrayZip arrayZipUnaligned CARDINALITY countEqual
  dotProduct dynamicElement dynamicType empty emptyArrayDate emptyArrayDateTime emptyArrayFloat32
  emptyArrayFloat64 emptyArrayInt16 emptyArrayInt32 emptyArrayInt64 emptyArrayInt8 emptyArrayString
  emptyArrayToSingle emptyArrayUInt16 emptyArrayUInt32 emptyArrayUInt64 emptyArrayUInt8 extractKeyValuePairs
  extractKeyValuePairsWithEscaping flatten flattenTuple has hasAll hasAny hasSubstr indexOf indexOfAssumeSorted
  isDynamicElementInSharedData isValidJSON JSON_ARRAY_LENGTH JSON_EXISTS JSON_QUERY JSON_VALUE JSONAllPaths
  JSONAllPathsWithTypes JSONAllValues JSONArrayLength JSONDynamicPaths JSONDynamicPathsWithTypes JSONExtract
  JSONExtractArrayRaw JSONExtractArrayRawCaseInsensitive JSONExtractBool JSONExtractBoolCaseInsensitive
  JSONExtractCaseInsensitive JSONExtractFloat JSONExtractFloatCaseInsensitive JSONExtractInt
  JSONExtractIntCaseInsensitive JSONExtractKeys JSONExtractKeysAndValues JSONExtractKeysAndValuesCaseInsensitive
  JSONExtractKeysAndValuesRaw JSONExtractKeysAndValuesRawCaseInsensitive JSONExtractKeysCaseInsensitive
  JSONExtractRaw JSONExtractRawCaseInsensitive JSONExtractString JSONExtractStringCaseInsensitive JSONExtractUInt
  JSONExtractUIntCaseInsensitive JSONHas JSONKey JSONLength jsonMergePatch JSONMergePatch JSONSharedDataPaths
  JSONSharedDataPathsWithTypes JSONType length map MAP_FROM_ARRAYS mapAdd mapAll mapApply mapConcat mapContains
  mapContainsKey mapContainsKeyLike mapContainsValue mapContainsValueLike mapExists mapExtractKeyLike
  mapExtractValueLike mapFilter mapFromArrays mapFromString mapKeys mapPartialReverseSort mapPartialSort
  mapPopulateSeries mapReverseSort mapSort mapSubtract mapUpdate mapValues notEmpty OCTET_LENGTH prettyPrintJSON
  randomHadamardTransform range replicate reverse scalarProduct simpleJSONExtractBool simpleJSONExtractFloat
  simpleJSONExtractInt simpleJSONExtractRaw simpleJSONExtractString simpleJSONExtractUInt simpleJSONHas str_to_map
  toJSONString tuple tupleConcat tupleDivide tupleDivideByNumber tupleElement tupleHammingDistance tupleIntDiv
  tupleIntDivByNumber tupleIntDivOrZero tupleIntDivOrZeroByNumber tupleMinus tupleModulo tupleModuloByNumber
  tupleMultiply tupleMultiplyByNumber tupleNames tupleNegate tuplePlus tuplePositiveModuloByNumber
  tupleToNameValuePairs unnest vectorDifference vectorSum visitParamExtractBool visitParamExtractFloat
  visitParamExtractInt visitParamExtractRaw visitParamExtractString visitParamExtractUInt visitParamHas
`,
  /** Type conversion and parsing. */
  typeConversion: `
  accurateCast accurateCastOrDefault accurateCastOrNull CAST DATE fromUnixTimestamp64Micro
  fromUnixTimestamp64Milli fromUnixTimestamp64Nano fromUnixTimestamp64Second parseDateTime
  parseDateTime32BestEffort parseDateTime32BestEffortOrNull parseDateTime32BestEffortOrZero parseDateTime64
  parseDateTime64BestEffort parseDateTime64BestEffortOrNull parseDateTime64BestEffortOrZero
  parseDateTime64BestEffortUS parseDateTime64BestEffortUSOrNull parseDateTime64BestEffortUSOrZero
  parseDateTime64InJodaSyntax parseDateTime64InJodaSyntaxOrNull parseDateTime64InJodaSyntaxOrZero
  parseDateTime64OrNull parseDateTime64OrZero parseDateTimeBestEffort parseDateTimeBestEffortOrNull
  parseDateTimeBestEffortOrZero parseDateTimeBestEffortUS parseDateTimeBestEffortUSOrNull
  parseDateTimeBestEffortUSOrZero parseDateTimeInJodaSyntax parseDateTimeInJodaSyntaxOrNull
  parseDateTimeInJodaSyntaxOrZero parseDateTimeOrNull parseDateTimeOrZero reinterpret reinterpretAsDate
  reinterpretAsDateTime reinterpretAsFixedString reinterpretAsFloat32 reinterpretAsFloat64 reinterpretAsInt128
  reinterpretAsInt16 reinterpretAsInt256 reinterpretAsInt32 reinterpretAsInt64 reinterpretAsInt8
  reinterpretAsString reinterpretAsUInt128 reinterpretAsUInt16 reinterpretAsUInt256 reinterpretAsUInt32
  reinterpretAsUInt64 reinterpretAsUInt8 reinterpretAsUUID str_to_date TO_UNIXTIME toBFloat16 toBFloat16OrNull
  toBFloat16OrZero toBool toDate toDate32 toDate32OrDefault toDate32OrNull toDate32OrZero toDateOrDefault
  toDateOrNull toDateOrZero toDateTime toDateTime32 toDateTime64 toDateTime64OrDefault toDateTime64OrNull
  toDateTime64OrZero toDateTimeOrDefault toDateTimeOrNull toDateTimeOrZero toDecimal128 toDecimal128OrDefault
  toDecimal128OrNull toDecimal128OrZero toDecimal256 toDecimal256OrDefault toDecimal256OrNull toDecimal256OrZero
  toDecimal32 toDecimal32OrDefault toDecimal32OrNull toDecimal32OrZero toDecimal64 toDecimal64OrDefault
  toDecimal64OrNull toDecimal64OrZero toDecimalString toFixedString toFloat32 toFloat32OrDefault toFloat32OrNull
  toFloat32OrZero toFloat64 toFloat64OrDefault toFloat64OrNull toFloat64OrZero toInt128 toInt128OrDefault
  toInt128OrNull toInt128OrZero toInt16 toInt16OrDefault toInt16OrNull toInt16OrZero toInt256 toInt256OrDefault
  toInt256OrNull toInt256OrZero toInt32 toInt32OrDefault toInt32OrNull toInt32OrZero toInt64 toInt64OrDefault
  toInt64OrNull toInt64OrZero toInt8 toInt8OrDefault toInt8OrNull toInt8OrZero toInterval toIntervalDay
  toIntervalHour toIntervalMicrosecond toIntervalMillisecond toIntervalMinute toIntervalMonth toIntervalNanosecond
  toIntervalQuarter toIntervalSecond toIntervalWeek toIntervalYear toLowCardinality toString toStringCutToZero
  toTime toTime64 toTime64OrNull toTime64OrZero toTimeOrNull toTimeOrZero toUInt128 toUInt128OrDefault
  toUInt128OrNull toUInt128OrZero toUInt16 toUInt16OrDefault toUInt16OrNull toUInt16OrZero toUInt256
  toUInt256OrDefault toUInt256OrNull toUInt256OrZero toUInt32 toUInt32OrDefault toUInt32OrNull toUInt32OrZero
  toUInt64 toUInt64OrDefault toUInt64OrNull toUInt64OrZero toUInt8 toUInt8OrDefault toUInt8OrNull toUInt8OrZero
  toUnixTimestamp64Micro toUnixTimestamp64Milli toUnixTimestamp64Nano toUnixTimestamp64Second toUUID toUUIDOrZero
`,
  /** Formatting and row helpers a dashboard uses. */
  other: `
  bar byteSize countDigits current_database currentDatabase DATABASE finalizeAggregation FORMAT_BYTES
  formatReadableDecimalSize formatReadableQuantity formatReadableSize formatReadableTimeDelta identity ignore
  isConstant isDecimalOverflow materialize neighbor parseReadableSize parseReadableSizeOrNull
  parseReadableSizeOrZero parseTimeDelta rowNumberInAllBlocks rowNumberInBlock runningDifference
  runningDifferenceStartingWithFirstValue SCHEMA sleep throwIf toTypeName transform visibleWidth
`,
};

/** What the AST calls functions that system.functions does not list: `x -> …` and `EXISTS (subquery)`. */
const SYNTAX_FUNCTIONS = ["lambda", "exists", "caseWithExpression", "_CAST", "grouping"];

/** Aggregate combinator suffixes, longest first where one ends another (MergeState before State). */
const AGGREGATE_COMBINATORS = [
  "SimpleState",
  "MergeState",
  "State",
  "Merge",
  "If",
  "Array",
  "Map",
  "OrNull",
  "OrDefault",
  "Distinct",
  "ForEach",
  "Resample",
  "ArgMin",
  "ArgMax",
  "Tuple",
];

/** Table functions that only generate rows in memory (and run under readonly = 1: `zeros` does not). */
export const ALLOWED_TABLE_FUNCTIONS: ReadonlySet<string> = new Set(["numbers", "numbers_mt", "generate_series", "generateSeries", "values"]);

function words(text: string): string[] {
  return text.split(/\s+/).filter((word) => word !== "");
}

/** Every allowed name by family, for the test that checks them against system.functions. */
export const ALLOWED_FUNCTION_FAMILIES: Readonly<Record<string, readonly string[]>> = Object.fromEntries(
  Object.entries(FAMILIES).map(([family, names]) => [family, words(names)]),
);

// Lower-cased: no two functions of system.functions differ only by case across the allowed/refused line.
const allowed = new Set([...Object.values(ALLOWED_FUNCTION_FAMILIES).flat(), ...SYNTAX_FUNCTIONS].map((name) => name.toLowerCase()));
const aggregates = new Set(ALLOWED_FUNCTION_FAMILIES.aggregate?.map((name) => name.toLowerCase()));

/** Whether a statement may call `name` (as written: an alias, any case, an aggregate with combinators). */
export function isAllowedFunction(name: string): boolean {
  if (allowed.has(name.toLowerCase())) return true;
  let base = name;
  for (let stripped = true; stripped;) {
    stripped = false;
    for (const suffix of AGGREGATE_COMBINATORS) {
      if (base.length > suffix.length && base.endsWith(suffix)) {
        base = base.slice(0, -suffix.length);
        stripped = true;
        if (aggregates.has(base.toLowerCase())) return true;
        break;
      }
    }
  }
  return false;
}
