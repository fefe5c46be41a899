using System.Text.Json;
using System.Text.Json.Serialization;
using Procurement.Domain.Contracts;

namespace Procurement.Storage;

/// <summary>Contract terms are stored as JSON: decimals stay exact, enums are names, times ISO 8601.</summary>
internal static class TermsJson
{
    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseUpper) },
        WriteIndented = false,
    };

    public static string Serialize(ContractTerms terms) => JsonSerializer.Serialize(terms, Options);

    /// <summary>Parsed terms by their JSON: terms are immutable values, and admission reads the same few again and again.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, ContractTerms> Parsed = new(StringComparer.Ordinal);
    private const int MaxCached = 10_000;

    public static ContractTerms Deserialize(string json)
    {
        if (Parsed.TryGetValue(json, out var terms))
        {
            return terms;
        }

        terms = JsonSerializer.Deserialize<ContractTerms>(json, Options) ?? throw new InvalidDataException("Contract terms JSON is null.");
        if (Parsed.Count >= MaxCached)
        {
            Parsed.Clear();
        }

        Parsed[json] = terms;
        return terms;
    }
}
