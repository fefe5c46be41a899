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

    public static ContractTerms Deserialize(string json) =>
        JsonSerializer.Deserialize<ContractTerms>(json, Options) ?? throw new InvalidDataException("Contract terms JSON is null.");
}
